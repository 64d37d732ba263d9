"""Winoground (``examples.jsonl`` with ``image_0``, ``image_1``, ``caption_0``, ``caption_1``):
pairs scored by the text, image and group accuracies (:mod:`omniretrieve.eval.winoground`).

No collection: ``dense:<model>`` scores a caption and an image by the cosine of their vectors
(CLIP, BGE-VL), ``+rerank:<model>`` by the reranker's score of the image for the caption
(jina-reranker-m0). Other pipelines cannot see images and are skipped with the reason.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from omniretrieve.eval.context import EvalModels, EvalRun
from omniretrieve.eval.datasets import (
    DatasetError,
    EvalDataset,
    WinogroundExample,
    file_checksum,
    required_field,
)
from omniretrieve.eval.layouts import Layout
from omniretrieve.eval.pipelines import Pipeline
from omniretrieve.eval.results import TaskResult
from omniretrieve.eval.winoground import winoground_scores
from omniretrieve.jsonl import read_jsonl
from omniretrieve.models.registry import default_registry

TASK = "examples"
METRICS: tuple[str, ...] = ("text", "image", "group")


def detect(root: Path) -> bool:
    return (root / "examples.jsonl").is_file()


def load(root: Path, split: str | None = None) -> EvalDataset:
    """Every example (``split`` does not apply)."""
    path = root / "examples.jsonl"
    examples = []
    for number, record in read_jsonl(path):
        example_id = str(record.get("id", number))
        captions = (
            required_field(record, "caption_0", path, number),
            required_field(record, "caption_1", path, number),
        )
        images = []
        for key in ("image_0", "image_1"):
            name = required_field(record, key, path, number)
            candidates = [root / name, root / "images" / name, root / "images" / f"{name}.png"]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise DatasetError(f"{path}:{number}: image {name!r} not found", field=key)
            images.append(str(found))
        examples.append(WinogroundExample(example_id, captions, (images[0], images[1])))
    return EvalDataset(
        root.name,
        root,
        "winoground",
        {},
        [],
        file_checksum([path]),
        layout="winoground",
        metrics=METRICS,
        examples=examples,
    )


def skip_reason(dataset: EvalDataset, pipeline: Pipeline) -> str | None:
    """None when the pipeline names a model that reads images, else why it cannot run."""

    model = pipeline.reranker if pipeline.reranker else None
    if model is None and pipeline.mode == "dense" and len(pipeline.embedders) == 1:
        model = pipeline.embedders[0]
    reason = (
        "Winoground needs an image-capable model: dense:<model> (CLIP, BGE-VL) or "
        "+rerank:<model> (jina-reranker-m0)"
    )
    if model is None or pipeline.ocr:
        return reason
    try:
        family = default_registry().resolve(model, allow_download=False).family
    except Exception as exc:  # an unknown id is reported, not raised, like other skips
        return f"{reason}; {model}: {exc}"
    return None if "image" in family.modalities else f"{reason}; {model} reads text only"


def score_pipeline(
    dataset: EvalDataset, pipeline: Pipeline, models: EvalModels
) -> tuple[dict[str, float], dict[str, dict[str, float]], float]:
    """(mean text/image/group scores, per example, seconds)."""
    started = time.perf_counter()
    if pipeline.reranker:
        reranker = models.reranker(pipeline.reranker)

        def score(caption: str, image: str) -> float:
            response = reranker.rerank(caption, [{"image": image}], return_documents=False)
            return response.results[0].relevance_score

    else:
        embedder = models.native_embedder(pipeline.embedders[0])
        vectors: dict[tuple[str, str], np.ndarray] = {}
        for example in dataset.examples:
            items = [("text", c) for c in example.captions] + [("image", i) for i in example.images]
            missing = [item for item in items if item not in vectors]
            if missing:
                output = embedder.encode([{kind: value} for kind, value in missing])
                encoded = np.asarray(output.embeddings)
                vectors.update(zip(missing, encoded, strict=True))

        def score(caption: str, image: str) -> float:
            return float(vectors[("text", caption)] @ vectors[("image", image)])

    result = winoground_scores(dataset.examples, score)
    metrics = {"text": result.text, "image": result.image, "group": result.group}
    per_example = {name: {k: v[name] for k, v in result.per_example.items()} for name in metrics}
    return metrics, per_example, time.perf_counter() - started


def evaluate(dataset: EvalDataset, pipelines: list[Pipeline], run: EvalRun) -> list[TaskResult]:
    results = []
    for pipeline in pipelines:
        metrics, per_example, seconds = score_pipeline(dataset, pipeline, run.models)
        results.append(
            TaskResult(
                dataset.name,
                TASK,
                pipeline.spec,
                metrics,
                per_example,
                len(dataset.examples),
                seconds,
            )
        )
    return results


LAYOUT = Layout(
    name="winoground",
    description="Winoground examples.jsonl",
    detect=detect,
    load=load,
    skip_reason=skip_reason,
    evaluate=evaluate,
)
