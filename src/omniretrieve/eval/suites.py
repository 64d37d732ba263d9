"""Suite files: several (datasets x pipelines) runs merged into one report."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from omniretrieve.errors import InputError
from omniretrieve.eval.report import write_report
from omniretrieve.eval.results import EvalReport, add_significance, merge_reports
from omniretrieve.eval.runner import evaluate
from omniretrieve.eval.significance import parse_pairs


def evaluate_suite(
    suite: Path, *, datasets_root: Path | None = None, out_dir: Path | None = None, **options: Any
) -> EvalReport:
    """Run a suite file: several (datasets x pipelines) runs merged into one report.

    The file is TOML::

        datasets_root = "../../shared/datasets"    # relative to the file; optional
        [[run]]
        datasets = ["scifact", "cranfield"]
        pipelines = ["bm25", "hybrid+rerank"]
        fit_fusion = "crossfit"                    # optional: as --fit-fusion, for this run
        task = "CosQA"                             # optional: a named task (as --task), or
        instruction = "Find the code that ..."     # any query instruction (as --instruction)

    ``datasets_root`` (argument, else ``$OMNIRETRIEVE_DATASETS``, else the file's) locates
    dataset names that are not paths."""
    try:
        spec = tomllib.loads(suite.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"suite file {suite} does not exist", field="suite") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{suite}: not a valid TOML suite ({exc})", field="suite") from exc
    runs = spec.get("run")
    if not isinstance(runs, list) or not runs:
        raise InputError(f"{suite}: needs at least one [[run]] table", field="suite")
    root = datasets_root
    if root is None and os.environ.get("OMNIRETRIEVE_DATASETS"):
        root = Path(os.environ["OMNIRETRIEVE_DATASETS"])
    if root is None:
        root = suite.parent / str(spec.get("datasets_root", "."))
    pairs = list(options.pop("compare", ()) or ())
    correction = options.pop("correction", "holm")
    reports = []
    for number, run in enumerate(runs, start=1):
        names, pipelines = run.get("datasets"), run.get("pipelines")
        if not isinstance(names, list) or not isinstance(pipelines, list) or not names:
            raise InputError(
                f"{suite}: run {number} needs 'datasets' and 'pipelines' lists", field="suite"
            )
        paths = [Path(n) if Path(n).is_dir() else root / str(n) for n in names]
        chosen = dict(options)
        if "fit_fusion" in run:  # a run may fit its own fusion weights (split name or crossfit)
            if options.get("fit_fusion") is not None:
                raise InputError(
                    f"{suite}: run {number} sets fit_fusion; drop --fit-fusion", field="fit_fusion"
                )
            chosen["fit_fusion"] = str(run["fit_fusion"])
        for key, option in (("task", "named_task"), ("instruction", "instruction")):
            if key in run:  # a run may name its datasets' task or instruction
                if options.get(option) is not None:
                    raise InputError(f"{suite}: run {number} sets {key}; drop --{key}", field=key)
                chosen[option] = str(run[key])
        reports.append(evaluate(paths, [str(p) for p in pipelines], **chosen))
    report = merge_reports(reports)
    instructions = {
        f"run {number}": r.config["query_instructions"]
        for number, r in enumerate(reports, start=1)
        if "query_instructions" in r.config
    }
    report.config.pop("query_instructions", None)
    if instructions:
        report.config["query_instructions"] = instructions
    report.config["suite"] = str(suite)
    specs = [p.spec for p in report.pipelines]
    add_significance(report, parse_pairs(pairs, specs), correction=correction)
    if out_dir is not None:
        write_report(report, out_dir)
    return report
