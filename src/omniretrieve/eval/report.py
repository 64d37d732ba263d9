"""Eval reports: a markdown table, a JSON file with every number, and PNG plots."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from omniretrieve.eval.datasets import EvalDataset
from omniretrieve.eval.layouts import TaskGroups, layout_of
from omniretrieve.eval.results import EvalReport, TaskResult


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
                "memory_per_document": r.memory_per_document,
                "skipped": r.skipped,
                "metrics": r.metrics,
                "per_query": {
                    metric: {q: round(v, 5) for q, v in values.items()}
                    for metric, values in r.per_query.items()
                },
            }
            for r in report.results
        ],
        "significance": [test.to_json() for test in report.significance],
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
    lines += significance_section(report)
    gap = report.config.get("modality_gap")
    if gap:
        lines += [
            "## Modality gap",
            "",
            f"{gap['model']}: {gap['text_pairs']} relevant pairs with a text document (mean "
            f"score {gap['text_mean']}), {gap['image_pairs']} with an image document (mean "
            f"{gap['image_mean']}); histogram overlap {gap['overlap']:.3f} "
            "(1: one scale for both; `modality-gap.png`).",
            "",
        ]
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


def _letters(specs: list[str]) -> dict[str, str]:
    """Each pipeline's marker letter (a, b, c... in report order), as ranx labels runs."""
    return {spec: chr(ord("a") + i) if i < 26 else f"[{i + 1}]" for i, spec in enumerate(specs)}


def _better_than(report: EvalReport, dataset: str, task: str, metric: str) -> dict[str, set[str]]:
    """Per pipeline, the pipelines it is significantly better than on this task and metric."""
    better: dict[str, set[str]] = {}
    for test in report.significance:
        if (test.dataset, test.task, test.metric) != (dataset, task, metric):
            continue
        winner = test.winner
        if winner is not None:
            better.setdefault(winner, set()).add(test.a if winner == test.b else test.b)
    return better


def _dataset_section(report: EvalReport, dataset: EvalDataset) -> list[str]:
    tasks = [t.name for t in dataset.tasks]
    if not tasks:
        return []
    metrics = dataset.metrics
    specs = report.pipelines_of(dataset.name)
    if not specs:
        return []
    letters = _letters(specs)
    lines = [f"## {dataset.name} ({dataset.kind})", ""]
    queries = {
        task: max(r.queries for r in report.results if r.dataset == dataset.name and r.task == task)
        for task in tasks
    }
    for metric in metrics:  # one table per metric: as wide as the pipelines, however many
        if len(metrics) > 1:
            lines += [f"### {metric}", ""]
        header = ["task", "queries", *specs]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|---" * len(header) + "|")
        for task in tasks:
            better = _better_than(report, dataset.name, task, metric)
            cells = [task, str(queries[task])]
            for spec in specs:
                beaten = sorted(letters[other] for other in better.get(spec, ()))
                marker = f"<sup>{''.join(beaten)}</sup>" if beaten else ""
                cells.append(_cell(report.result(dataset.name, task, spec), metric) + marker)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += _speed_table(report, dataset.name, specs)
    settings = report.config.get("significance")
    if settings and any(t.dataset == dataset.name for t in report.significance):
        legend = ", ".join(f"{letters[s]} = {s}" for s in specs)
        lines += [
            f"Pipelines: {legend}. A superscript names the pipelines a score is significantly "
            f"better than ({settings['test']}, {_correction(settings['correction'])} "
            f"over the pairs tested on each task and metric, p < {settings['alpha']}).",
            "",
        ]
    return lines


def _speed_table(report: EvalReport, dataset: str, specs: list[str]) -> list[str]:
    """Per pipeline: the queries searched and how long they took (all tasks together; the
    collection's build is not counted)."""
    rows = []
    for spec in specs:
        ran = [r for r in report.results if r.dataset == dataset and r.pipeline == spec]
        ran = [r for r in ran if not r.skipped]
        count = sum(r.queries for r in ran)
        seconds = sum(r.seconds for r in ran)
        memory = next((r.memory_per_document for r in ran if r.memory_per_document), None)
        stored = "" if memory is None else f"{memory / 1024:,.1f}"
        if count and seconds > 0:
            rows.append(
                f"| {spec} | {count} | {seconds:.2f} | {1000 * seconds / count:.1f} | "
                f"{count / seconds:.1f} | {stored} |"
            )
    if not rows:
        return []
    return [
        "Speed on this machine (search and rerank; the collection's build is not counted, "
        "and a pipeline reuses the query vectors and first-stage lists of the pipelines run "
        "before it, so its time is what it added; KB / document: the stored rows of the "
        "fields it searches, float32):",
        "",
        "| pipeline | queries | seconds | ms / query | queries / s | KB / document |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _correction(method: str) -> str:
    return {"holm": "Holm-corrected", "bonferroni": "Bonferroni-corrected"}.get(
        method, "uncorrected"
    )


def significance_section(report: EvalReport) -> list[str]:
    """Every tested pair with its raw and corrected p-values."""
    if not report.significance:
        return []
    settings = report.config["significance"]
    corrected = _correction(settings["correction"]).split("-")[0]
    lines = [
        "## Significance",
        "",
        f"{settings['test']}; p-values {_correction(settings['correction'])} within each "
        f"family ({settings['family']}); * : p < {settings['alpha']} after correction.",
        "",
        f"| dataset / task | metric | A | B | A mean | B mean | B - A | p (t-test) "
        f"| p (randomisation) | p ({corrected}) | family |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for test in report.significance:
        result = test.comparison
        lines.append(
            f"| {test.dataset} / {test.task} | {test.metric} | {test.a} | {test.b} "
            f"| {result.mean_a:.4f} | {result.mean_b:.4f} | {result.delta:+.4f} "
            f"| {_p(result.t_test_p)} | {_p(result.randomisation_p)} "
            f"| {_p(test.corrected_p)}{' *' if test.significant else ''} | {test.family} |"
        )
    lines.append("")
    return lines


def _p(value: float) -> str:
    return "n/a" if value != value else f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"


def write_plots(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    """Per dataset, per-query values of its leading metric: their distribution per pipeline,
    and each pipeline's per-query differences from the first (sorted), so a one-task
    dataset shows its spread and a pair's wins and losses query by query."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: dict[str, Path] = {}
    if report.modality_gap is not None:
        from omniretrieve.eval.modality_gap import write_gap_plot

        paths["modality-gap"] = write_gap_plot(report.modality_gap, out_dir)
    for dataset in report.datasets:
        metric = dataset.metrics[0]
        values = _per_query(report, dataset.name, metric)
        if not values:
            continue
        stem = f"{dataset.name}-{metric.replace('@', '_at_')}"
        path = out_dir / f"{stem}-per-query.png"
        _distribution_plot(plt, values, f"{dataset.name}: {metric} per query", metric, path)
        paths[f"per-query:{dataset.name}"] = path
        baseline = next(iter(values))
        if len(values) > 1:
            path = out_dir / f"{stem}-deltas.png"
            _delta_plot(plt, values, baseline, f"{dataset.name}: {metric}, per query", path)
            paths[f"deltas:{dataset.name}"] = path
    return paths


def _per_query(report: EvalReport, dataset: str, metric: str) -> dict[str, dict[str, float]]:
    """Pipeline -> (task/query id -> value) over every task of the dataset, in report order;
    only the queries every pipeline was scored on."""
    found: dict[str, dict[str, float]] = {}
    for spec in report.pipelines_of(dataset):
        scores = {
            f"{r.task}/{query}": value
            for r in report.results
            if r.dataset == dataset and r.pipeline == spec and not r.skipped
            for query, value in r.per_query.get(metric, {}).items()
        }
        if scores:
            found[spec] = scores
    shared = set.intersection(*(set(v) for v in found.values())) if found else set()
    return {
        spec: {q: v for q, v in scores.items() if q in shared} for spec, scores in found.items()
    }


def _distribution_plot(
    plt: Any, values: dict[str, dict[str, float]], title: str, ylabel: str, path: Path
) -> None:
    figure, axes = plt.subplots(figsize=(max(4.0, 1.6 * len(values)), 4.0))
    data = [list(v.values()) for v in values.values()]
    axes.violinplot(data, showextrema=False)
    axes.boxplot(data, tick_labels=list(values), showmeans=True, widths=0.15)
    queries = len(data[0])
    axes.set_title(f"{title} ({queries} queries)")
    axes.set_ylabel(ylabel)
    axes.set_ylim(-0.02, 1.02)
    axes.tick_params(axis="x", rotation=20)
    _save(figure, plt, path)


def _delta_plot(
    plt: Any, values: dict[str, dict[str, float]], baseline: str, title: str, path: Path
) -> None:
    import numpy as np

    figure, axes = plt.subplots(figsize=(7.0, 4.0))
    reference = values[baseline]
    queries = sorted(reference)
    for spec, scores in values.items():
        if spec == baseline:
            continue
        deltas = np.sort([scores[q] - reference[q] for q in queries])[::-1]
        wins, losses = int((deltas > 0).sum()), int((deltas < 0).sum())
        axes.plot(
            np.arange(1, len(deltas) + 1),
            deltas,
            label=f"{spec} (better on {wins}, worse on {losses}, mean {deltas.mean():+.4f})",
        )
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.set_title(f"{title}: difference from {baseline}")
    axes.set_xlabel("queries, sorted by the difference")
    axes.set_ylabel(f"score - {baseline}")
    axes.legend(fontsize=8)
    _save(figure, plt, path)


def _save(figure: Any, plt: Any, path: Path) -> None:
    with warnings.catch_warnings():  # long pipeline names (model paths) may not fit: still drawn
        warnings.simplefilter("ignore", UserWarning)
        figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
