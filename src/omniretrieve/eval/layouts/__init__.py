"""Evaluation dataset layouts: one module each, found in a registry, so a new layout is one
new module and the runner never asks what kind a dataset is.

A layout module declares ``LAYOUT`` (a :class:`Layout`): how to recognise its folder, how to
read it into an :class:`~omniretrieve.eval.datasets.EvalDataset` (with the metrics its report
leads with), which pipelines it cannot run and why, how to run the others, and how its tasks
group in the report. Folders are recognised in :data:`LAYOUT_MODULES` order (the first whose
``detect`` accepts the folder reads it).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from omniretrieve.eval.context import EvalRun
from omniretrieve.eval.datasets import DatasetError, EvalDataset
from omniretrieve.eval.pipelines import Pipeline
from omniretrieve.eval.results import TaskResult

LAYOUT_MODULES: tuple[str, ...] = (
    "omniretrieve.eval.layouts.winoground",
    "omniretrieve.eval.layouts.image_caption",
    "omniretrieve.eval.layouts.multilingual",
    "omniretrieve.eval.layouts.composed",
    "omniretrieve.eval.layouts.mmeb",
    "omniretrieve.eval.layouts.mkqa",
    "omniretrieve.eval.layouts.miracl",
    "omniretrieve.eval.layouts.beir",
    "omniretrieve.eval.layouts.own",
)

TaskGroups = list[tuple[str, list[str]]]
"""(label suffix, task names averaged under it) per report column group."""


def one_group_per_task(dataset: EvalDataset) -> TaskGroups:
    names = [t.name for t in dataset.tasks] or ["examples"]
    if len(names) == 1:
        return [("", names)]
    return [(f" {n}", [n]) for n in names]


@dataclass(frozen=True)
class Layout:
    name: str
    description: str
    """The files that make the layout (named in the error for an unknown folder)."""
    detect: Callable[[Path], bool]
    load: Callable[[Path, str | None], EvalDataset]
    skip_reason: Callable[[EvalDataset, Pipeline], str | None]
    """None when the pipeline can run on the dataset, else why not (reported, not raised)."""
    evaluate: Callable[[EvalDataset, list[Pipeline], EvalRun], list[TaskResult]]
    """Run the pipelines that can run; one result per (task, pipeline)."""
    task_groups: Callable[[EvalDataset], TaskGroups] = one_group_per_task
    fits_fusion: bool = False
    """Whether hybrid weights can be fitted on another split of the same corpus."""


@cache
def layouts() -> tuple[Layout, ...]:
    return tuple(importlib.import_module(name).LAYOUT for name in LAYOUT_MODULES)


def layout_of(dataset: EvalDataset) -> Layout:
    for layout in layouts():
        if layout.name == dataset.layout:
            return layout
    raise DatasetError(f"{dataset.name}: unknown dataset layout {dataset.layout!r}")


def load_eval_dataset(path: str | Path, split: str | None = None) -> EvalDataset:
    """Read a dataset folder, recognising its layout from the files present."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist", field="dataset")
    for layout in layouts():
        if layout.detect(root):
            return layout.load(root, split)
    known = ", ".join(layout.description for layout in layouts())
    raise DatasetError(f"{root}: not a known dataset layout ({known})", field="dataset")
