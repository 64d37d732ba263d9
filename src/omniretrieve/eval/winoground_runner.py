"""Winoground with an image-capable model: ``dense:<model>`` scores a caption and an image by
the cosine of their vectors (CLIP, BGE-VL), ``+rerank:<model>`` by the reranker's score of the
image for the caption (jina-reranker-m0). Other pipelines cannot see images and are skipped with
the reason."""

from __future__ import annotations

import time

import numpy as np

from omniretrieve.embedder import Embedder
from omniretrieve.eval.context import EvalModels
from omniretrieve.eval.loaders import EvalDataset
from omniretrieve.eval.pipelines import Pipeline
from omniretrieve.eval.winoground import winoground_scores
from omniretrieve.models.registry import default_registry
from omniretrieve.reranker import Reranker

TASK = "examples"


def skip_reason(pipeline: Pipeline) -> str | None:
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


def evaluate_winoground(
    dataset: EvalDataset, pipeline: Pipeline, models: EvalModels
) -> tuple[dict[str, float], dict[str, dict[str, float]], float]:
    """(mean text/image/group scores, per example, seconds)."""
    started = time.perf_counter()
    if pipeline.reranker:
        reranker = models.rerankers.get(pipeline.reranker) or Reranker(pipeline.reranker)
        models.rerankers[pipeline.reranker] = reranker

        def score(caption: str, image: str) -> float:
            response = reranker.rerank(caption, [{"image": image}], return_documents=False)
            return response.results[0].relevance_score

    else:
        model_id = pipeline.embedders[0]
        embedder = models.embedders.get(model_id)
        if not isinstance(embedder, Embedder):  # eval's caching wrappers read text only
            embedder = Embedder(model_id)
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
