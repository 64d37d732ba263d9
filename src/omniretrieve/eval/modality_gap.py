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
    """Score every dataset's relevant pairs with ``model_id`` (a reranker or an embedder):
    each query once, with all its relevant documents."""
    from omniretrieve.models.registry import default_registry

    kind = default_registry().resolve(model_id, allow_download=False).family.kind
    score = _rerank_scores if kind == "reranker" else _cosines
    text_scores: list[float] = []
    image_scores: list[float] = []
    for dataset in datasets:
        by_query: dict[str, list[str]] = {}
        for query, doc_id in relevant_pairs(dataset):
            by_query.setdefault(query, []).append(doc_id)
        corpus = dataset.corpus
        items = {
            d: {"image": corpus[d].image} if corpus[d].image else {"text": corpus[d].full_text}
            for ids in by_query.values()
            for d in ids
        }
        scored = score(models, model_id, by_query, items)
        for doc_ids, scores in zip(by_query.values(), scored, strict=True):
            for doc_id, value in zip(doc_ids, scores, strict=True):
                (image_scores if dataset.corpus[doc_id].image else text_scores).append(value)
    return ModalityGap(model_id, text_scores, image_scores)


def _rerank_scores(
    models: EvalModels, model_id: str, by_query: dict[str, list[str]], items: dict[str, Any]
) -> list[list[float]]:
    """Per query, the reranker's score of each of its documents (one call per query)."""
    reranker = models.reranker(model_id)
    found = []
    for query, doc_ids in by_query.items():
        response = reranker.rerank(query, [items[d] for d in doc_ids], return_documents=False)
        by_index = {r.index: float(r.relevance_score) for r in response.results}
        found.append([by_index[i] for i in range(len(doc_ids))])
    return found


def _cosines(
    models: EvalModels, model_id: str, by_query: dict[str, list[str]], items: dict[str, Any]
) -> list[list[float]]:
    """Per query, the cosine of its vector and each of its documents' (each embedded once)."""
    embedder = models.native_embedder(model_id)
    queries = np.asarray(embedder.encode(list(by_query), task="retrieval.query").embeddings)
    ids = list(items)
    vectors = np.asarray(
        embedder.encode([items[d] for d in ids], task="retrieval.passage").embeddings
    )
    row = {d: i for i, d in enumerate(ids)}
    return [
        [float(query @ vectors[row[d]]) for d in doc_ids]
        for query, doc_ids in zip(queries, by_query.values(), strict=True)
    ]


def write_gap_plot(gap: ModalityGap, out_dir: Path) -> Path:
    return modality_gap_plot(
        gap.text_scores, gap.image_scores, gap.model, out_dir / "modality-gap.png"
    )


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
