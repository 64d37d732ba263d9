"""What an evaluation returns: one result per (dataset, task, pipeline), the report that holds
them with its configuration, and the merge of several reports (a suite's runs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omniretrieve.eval.datasets import EvalDataset
from omniretrieve.eval.pipelines import Pipeline
from omniretrieve.eval.significance import PairTest, pairwise_tests


@dataclass(frozen=True)
class TaskResult:
    dataset: str
    task: str
    pipeline: str
    metrics: dict[str, float] = field(default_factory=dict)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    queries: int = 0
    seconds: float = 0.0
    skipped: str | None = None
    """Why this pipeline could not run on this dataset (then there are no metrics)."""
    memory_per_document: float | None = None
    """Bytes a document's stored rows take in the fields the pipeline searches (None: BM25
    alone, or a supplied run)."""


@dataclass
class EvalReport:
    datasets: list[EvalDataset]
    pipelines: list[Pipeline]
    results: list[TaskResult]
    config: dict[str, Any]
    significance: list[PairTest] = field(default_factory=list)
    """Paired tests between pipelines, corrected per family (:func:`add_significance`)."""
    modality_gap: Any = None
    """A :class:`~omniretrieve.eval.modality_gap.ModalityGap`, when one was measured."""

    def result(self, dataset: str, task: str, pipeline: str) -> TaskResult:
        found = self.find(dataset, task, pipeline)
        if found is None:
            raise KeyError((dataset, task, pipeline))
        return found

    def find(self, dataset: str, task: str, pipeline: str) -> TaskResult | None:
        for item in self.results:
            if (item.dataset, item.task, item.pipeline) == (dataset, task, pipeline):
                return item
        return None

    def pipelines_of(self, dataset: str) -> list[str]:
        """The pipelines that were run on ``dataset``, in report order."""
        ran = {r.pipeline for r in self.results if r.dataset == dataset}
        return [p.spec for p in self.pipelines if p.spec in ran]


def merge_reports(reports: Sequence[EvalReport]) -> EvalReport:
    datasets: dict[str, EvalDataset] = {}
    pipelines: dict[str, Pipeline] = {}
    results: list[TaskResult] = []
    config: dict[str, Any] = dict(reports[0].config)
    models: dict[str, str] = {}
    described: dict[str, Any] = {}
    for report in reports:
        for dataset in report.datasets:
            datasets.setdefault(dataset.name, dataset)
        for pipeline in report.pipelines:
            pipelines.setdefault(pipeline.spec, pipeline)
        results.extend(report.results)
        models.update(report.config.get("models", {}))
        for entry in report.config.get("datasets", []):
            described.setdefault(entry["name"], entry)
    config.update(models=models, datasets=list(described.values()), pipelines=list(pipelines))
    config["fusion_weights"] = {
        "fitted_on": {
            k: v
            for r in reports
            for k, v in r.config.get("fusion_weights", {}).get("fitted_on", {}).items()
        },
        "by_dataset": {
            k: v
            for r in reports
            for k, v in r.config.get("fusion_weights", {}).get("by_dataset", {}).items()
        },
    }
    return EvalReport(list(datasets.values()), list(pipelines.values()), results, config)


def add_significance(
    report: EvalReport,
    pairs: Sequence[tuple[str, str]] = (),
    *,
    correction: str = "holm",
    resamples: int = 10_000,
    alpha: float = 0.05,
) -> None:
    """Test ``pairs`` (default: the first pipeline against each other) on every task and
    each dataset's leading metrics; the tests go in ``report.significance`` and how they
    were made in ``report.config["significance"]``."""
    specs = [p.spec for p in report.pipelines]
    chosen = list(pairs) or [(specs[0], other) for other in specs[1:]]
    leading = {d.name: d.metrics for d in report.datasets}
    per_query = {
        (r.dataset, r.task, metric, r.pipeline): r.per_query[metric]
        for r in report.results
        if not r.skipped
        for metric in leading.get(r.dataset, ())
        if metric in r.per_query
    }
    report.significance = pairwise_tests(
        per_query, chosen, correction=correction, resamples=resamples, alpha=alpha
    )
    report.config["significance"] = {
        "pairs": [f"{a} vs {b}" for a, b in chosen],
        "test": f"paired randomisation test, {resamples} resamples"
        if resamples
        else "paired t-test",
        "correction": correction,
        "family": "the pairs tested on one dataset, task and metric",
        "alpha": alpha,
    }
