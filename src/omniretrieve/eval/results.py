"""What an evaluation returns: one result per (dataset, task, pipeline), the report that holds
them with its configuration, and the merge of several reports (a suite's runs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from omniretrieve.eval.datasets import EvalDataset
from omniretrieve.eval.pipelines import Pipeline
from omniretrieve.eval.significance import PairTest


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
