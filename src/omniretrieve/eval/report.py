"""Eval reports: a markdown table, a JSON file with every number, and PNG plots."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from omniretrieve.eval.datasets import EvalDataset
from omniretrieve.eval.layouts import TaskGroups, layout_of
from omniretrieve.eval.results import EvalReport, TaskResult
from omniretrieve.eval.significance import compare

SIGNIFICANCE_LEVEL = 0.05


def write_report(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    """Write ``report.md``, ``results.json`` and the plots; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": out_dir / "report.md",
        "json": out_dir / "results.json",
    }
    paths["markdown"].write_text(markdown(report), encoding="utf-8")
    paths["json"].write_text(json.dumps(to_json(report), indent=1), encoding="utf-8")
    paths.update(write_plots(report, out_dir))
    return paths


def to_json(report: EvalReport) -> dict[str, Any]:
    return {
        "config": report.config,
        "results": [
            {
                "dataset": r.dataset,
                "task": r.task,
                "pipeline": r.pipeline,
                "queries": r.queries,
                "seconds": round(r.seconds, 3),
                "skipped": r.skipped,
                "metrics": r.metrics,
                "per_query": {
                    metric: {q: round(v, 5) for q, v in values.items()}
                    for metric, values in r.per_query.items()
                },
            }
            for r in report.results
        ],
    }


def _cell(result: TaskResult | None, metric: str) -> str:
    if result is None or result.skipped:
        return "n/a"
    return f"{result.metrics.get(metric, float('nan')):.4f}"


def summary_rows(report: EvalReport) -> list[tuple[str, list[tuple[str, float | None]]]]:
    """Per pipeline: (column, value) for each dataset's primary metrics; multi-task datasets
    give the mean over their per-language tasks and the cross-lingual task separately."""
    rows = []
    for pipeline in report.pipelines:
        cells: list[tuple[str, float | None]] = []
        for dataset in report.datasets:
            groups = _task_groups(dataset)
            for label, tasks in groups:
                for metric in dataset.metrics:
                    values: list[float] = []
                    for task in tasks:
                        result = report.find(dataset.name, task, pipeline.spec)
                        if result is None or result.skipped or metric not in result.metrics:
                            values = []
                            break
                        values.append(result.metrics[metric])
                    column = f"{dataset.name}{label} {metric}"
                    cells.append((column, sum(values) / len(values) if values else None))
        rows.append((pipeline.spec, cells))
    return rows


def _task_groups(dataset: EvalDataset) -> TaskGroups:
    return layout_of(dataset).task_groups(dataset)


def markdown(report: EvalReport) -> str:
    lines = ["# omniretrieve eval", ""]
    rows = summary_rows(report)
    if rows and rows[0][1]:
        columns = [c for c, _ in rows[0][1]]
        lines += ["| pipeline | " + " | ".join(columns) + " |"]
        lines += ["|---" * (len(columns) + 1) + "|"]
        for spec, cells in rows:
            values = ["n/a" if v is None else f"{v:.4f}" for _, v in cells]
            lines.append(f"| {spec} | " + " | ".join(values) + " |")
        lines.append("")
    for dataset in report.datasets:
        lines += _dataset_section(report, dataset)
    skipped = [r for r in report.results if r.skipped]
    if skipped:
        lines += ["## Not run", ""]
        seen = set()
        for r in skipped:
            if (r.dataset, r.pipeline) not in seen:
                seen.add((r.dataset, r.pipeline))
                lines.append(f"- {r.dataset} / {r.pipeline}: {r.skipped}")
        lines.append("")
    config = report.config
    lines += [
        "## Configuration",
        "",
        f"omniretrieve {config['omniretrieve']}, Python {config['python']}, "
        + ", ".join(f"{k} {v}" for k, v in config["packages"].items()),
        "",
    ]
    lines += [f"- {_documents_line(d)}, sha256 {d['checksum'][:16]}…" for d in config["datasets"]]
    lines += [f"- model {m}: {f}" for m, f in config["models"].items()]
    if config.get("ocr"):
        lines.append(f"- OCR: {config['ocr']}")
    fusion = config.get("fusion_weights", {})
    for dataset, fits in fusion.get("by_dataset", {}).items():
        fitted_on = fusion.get("fitted_on", {}).get(dataset)
        for pipeline, fit in fits.items():
            if "pseudo" in fit:  # fitted on pseudo-queries from the corpus
                lines.append(_pseudo_line(dataset, pipeline, fit["pseudo"]))
                continue
            if "weights" in fit:  # fitted on another split
                lines.append(
                    f"- {dataset} / {pipeline}: fusion weights (BM25 first) "
                    f"{_weights(fit['weights'])}, chosen on {fit['queries']} {fitted_on} "
                    f"queries ({fit['metric']} {fit['train_score']:.4f})"
                )
                continue
            for task, crossfit in fit.items():  # cross-fitted per task
                folds = "; ".join(
                    f"{fold['queries']} queries searched with {_weights(fold['weights'])} "
                    f"(chosen on the other {fold['fitted_on_queries']})"
                    for fold in crossfit["folds"]
                )
                lines.append(f"- {dataset}/{task} / {pipeline}: cross-fitted weights: {folds}")
    return "\n".join(lines) + "\n"


def _documents_line(dataset: dict[str, Any]) -> str:
    """How many documents the set has and how many were indexed (empty ones are not)."""
    line = f"{dataset['name']}: {dataset['documents']} documents"
    empty = dataset.get("empty_documents") or []
    if empty:
        shown = ", ".join(empty[:5]) + (", ..." if len(empty) > 5 else "")
        line += f", {dataset['indexed']} indexed ({len(empty)} empty, not indexed: {shown})"
    return line


def _pseudo_line(dataset: str, pipeline: str, fit: dict[str, Any]) -> str:
    line = (
        f"- {dataset} / {pipeline}: {fit['method']} fusion, weights (BM25 first) "
        f"{_weights(fit['weights'])}, chosen on {fit['queries']} pseudo-queries from the "
        f"corpus (pseudo NDCG@10 {fit['ndcg']:.4f}; equal weights {fit['equal_ndcg']:.4f})"
    )
    rerank = fit.get("rerank")
    if rerank is not None:
        share = rerank["first_stage_share"]
        line += (
            f"; reranker {rerank['reranker']}: not used (no gain on pseudo-queries)"
            if share >= 1.0
            else f"; reranker {rerank['reranker']} mixed with the first stage at {share:.1f}"
        )
    return line


def _weights(weights: list[float]) -> str:
    return "(" + ", ".join(f"{w:.2f}" for w in weights) + ")"


def _dataset_section(report: EvalReport, dataset: EvalDataset) -> list[str]:
    tasks = [t.name for t in dataset.tasks]
    if not tasks:
        return []
    metrics = dataset.metrics
    specs = report.pipelines_of(dataset.name)
    if not specs:
        return []
    baseline = specs[0]
    lines = [f"## {dataset.name} ({dataset.kind})", ""]
    header = ["task", "queries"] + [f"{p} {m}" for p in specs for m in metrics]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|---" * len(header) + "|")
    for task in tasks:
        cells = [task]
        first = report.result(dataset.name, task, baseline)
        cells.append(
            str(
                max(
                    r.queries
                    for r in report.results
                    if r.dataset == dataset.name and r.task == task
                )
            )
        )
        for spec in specs:
            result = report.result(dataset.name, task, spec)
            for metric in metrics:
                text = _cell(result, metric)
                if (
                    spec != baseline
                    and not result.skipped
                    and not first.skipped
                    and result.queries >= 2
                ):
                    test = compare(first.per_query[metric], result.per_query[metric], resamples=0)
                    if test.t_test_p < SIGNIFICANCE_LEVEL:
                        text += "†"
                cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"† differs from {baseline} with p < {SIGNIFICANCE_LEVEL} (paired t-test over the task's "
        "queries; `--compare A:B` adds a randomisation test).",
        "",
    ]
    return lines


def write_plots(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    """Box plots of per-task scores per pipeline (one per dataset with several tasks, and one
    across datasets)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: dict[str, Path] = {}
    runnable = [p.spec for p in report.pipelines]
    across: dict[str, list[float]] = {spec: [] for spec in runnable}
    for dataset in report.datasets:
        metric = dataset.metrics[0]
        per_pipeline: dict[str, list[float]] = {}
        for pipeline in runnable:
            values = [
                r.metrics[metric]
                for r in report.results
                if r.dataset == dataset.name and r.pipeline == pipeline and not r.skipped
            ]
            if values:
                per_pipeline[pipeline] = values
                across[pipeline].extend(values)
        if len(dataset.tasks) > 2 and per_pipeline:
            path = out_dir / f"{dataset.name}-{metric.replace('@', '_at_')}-boxplot.png"
            _boxplot(plt, per_pipeline, f"{dataset.name}: {metric} per task", metric, path)
            paths[f"boxplot:{dataset.name}"] = path
    across = {k: v for k, v in across.items() if v}
    if across:
        path = out_dir / "scores-boxplot.png"
        _boxplot(plt, across, "primary metric per dataset task", "score", path)
        paths["boxplot"] = path
    return paths


def _boxplot(plt: Any, data: dict[str, list[float]], title: str, ylabel: str, path: Path) -> None:
    figure, axes = plt.subplots(figsize=(max(4.0, 1.6 * len(data)), 4.0))
    axes.boxplot(list(data.values()), tick_labels=list(data.keys()), showmeans=True)
    axes.set_title(title)
    axes.set_ylabel(ylabel)
    axes.set_ylim(0, 1)
    axes.tick_params(axis="x", rotation=20)
    with warnings.catch_warnings():  # long pipeline names (model paths) may not fit: still drawn
        warnings.simplefilter("ignore", UserWarning)
        figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def modality_gap_plot(
    text_scores: list[float], image_scores: list[float], model: str, path: Path
) -> Path:
    """Histogram of a model's scores for text->text and text->image pairs: how far apart the
    two modalities sit on one scale (the jina-reranker-m0 announcement's chart)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.0, 4.0))
    bins = 40
    axes.hist(text_scores, bins=bins, alpha=0.6, label=f"text->text ({len(text_scores)})")
    axes.hist(image_scores, bins=bins, alpha=0.6, label=f"text->image ({len(image_scores)})")
    axes.set_title(f"modality gap: {model}")
    axes.set_xlabel("score")
    axes.set_ylabel("pairs")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
