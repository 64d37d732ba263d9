"""The modality gap of one model: its scores for relevant (query, document) pairs whose
document is text, against those whose document is an image (a page, a photo), as the
jina-reranker-m0 announcement charts them. Pairs come from every evaluated dataset's
judgments; a model that reads images only through text (an OCR'd page) shows the cost of OCR,
one that reads pixels shows whether both modalities land on one scale.

A reranker scores a pair with its relevance score; an embedder with the cosine of the two
vectors. The statistic is the overlap of the two score histograms (the sum, over shared bins,
of the smaller share: 1 when the distributions coincide, 0 when they do not meet).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.eval.context import EvalModels
from omniretrieve.eval.datasets import EvalDataset

PAIRS_PER_DATASET = 300
"""Relevant pairs scored per dataset at most (a seeded sample beyond)."""
BINS = 40


@dataclass(frozen=True)
class ModalityGap:
    model: str
    text_scores: list[float]
    image_scores: list[float]

    @property
    def overlap(self) -> float:
        return histogram_overlap(self.text_scores, self.image_scores)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "text_pairs": len(self.text_scores),
            "image_pairs": len(self.image_scores),
            "text_mean": _mean(self.text_scores),
            "image_mean": _mean(self.image_scores),
            "overlap": self.overlap,
            "bins": BINS,
        }


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 5) if values else None


def histogram_overlap(a: list[float], b: list[float], bins: int = BINS) -> float:
    """Overlap of two score distributions: histograms over the range of both, each
    normalised to shares, summed bin by bin as the smaller of the two shares."""
    if not a or not b:
        return float("nan")
    low, high = min(min(a), min(b)), max(max(a), max(b))
    if high == low:
        return 1.0
    edges = np.linspace(low, high, bins + 1)
    share_a = np.histogram(a, edges)[0] / len(a)
    share_b = np.histogram(b, edges)[0] / len(b)
    return float(np.minimum(share_a, share_b).sum())


def relevant_pairs(dataset: EvalDataset, seed: int = 0) -> list[tuple[str, str]]:
    """(query text, document id) for each judged relevant pair with a text query, a seeded
    sample of at most :data:`PAIRS_PER_DATASET`."""
    pairs = sorted(
        (task.queries[q], doc_id)
        for task in dataset.tasks
        for q, docs in task.qrels.items()
        if q not in task.query_images and task.queries.get(q, "").strip()
        for doc_id, grade in docs.items()
        if grade > 0 and doc_id in dataset.corpus and not dataset.corpus[doc_id].empty
    )
    pairs = list(dict.fromkeys(pairs))
    if len(pairs) > PAIRS_PER_DATASET:
        pairs = random.Random(seed).sample(pairs, PAIRS_PER_DATASET)
    return pairs


def measure_gap(model_id: str, datasets: list[EvalDataset], models: EvalModels) -> ModalityGap:
    """Score every dataset's relevant pairs with ``model_id`` (a reranker or an embedder)."""
    from omniretrieve.models.registry import default_registry

    kind = default_registry().resolve(model_id, allow_download=False).family.kind
    text_scores: list[float] = []
    image_scores: list[float] = []
    for dataset in datasets:
        for query, doc_id in relevant_pairs(dataset):
            document = dataset.corpus[doc_id]
            item: Any = {"image": document.image} if document.image else document.full_text
            score = (
                _rerank_score(models, model_id, query, item)
                if kind == "reranker"
                else _cosine(models, model_id, query, item)
            )
            (image_scores if document.image else text_scores).append(score)
    return ModalityGap(model_id, text_scores, image_scores)


def _rerank_score(models: EvalModels, model_id: str, query: str, item: Any) -> float:
    from omniretrieve.reranker import Reranker

    reranker = models.rerankers.get(model_id)
    if not isinstance(reranker, Reranker):
        reranker = Reranker(model_id)
        models.rerankers[model_id] = reranker
    response = reranker.rerank(query, [item], return_documents=False)
    return float(response.results[0].relevance_score)


def _cosine(models: EvalModels, model_id: str, query: str, item: Any) -> float:
    embedder = models.native_embedder(model_id)
    vectors = embedder.encode([query], task="retrieval.query").embeddings
    document = item if isinstance(item, dict) else {"text": item}
    target = embedder.encode([document], task="retrieval.passage").embeddings
    return float(np.asarray(vectors)[0] @ np.asarray(target)[0])


def write_gap_plot(gap: ModalityGap, out_dir: Path) -> Path:
    from omniretrieve.eval.report import modality_gap_plot

    return modality_gap_plot(
        gap.text_scores, gap.image_scores, gap.model, out_dir / "modality-gap.png"
    )
