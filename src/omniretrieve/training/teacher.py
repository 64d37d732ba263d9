"""A teacher's margins for margin distillation (Margin-MSE, as GPL does it).

The teacher is a reranker (the collection's configured one, or any reranker id): it scores
each pair's positive and negatives, and the student embedder learns to reproduce the
differences ``score(positive) - score(negative)``. Pseudo-queries are noisy labels; the
teacher's graded margins say how much better the positive really is, which is what keeps
unsupervised adaptation from learning the noise.

Every reranker here reports a probability of relevance; margins are taken between log-odds,
the scale of a relevance logit, which is the scale of the student's similarities divided by
its temperature (as its contrastive loss scales them). Probability differences (at most 1)
against cosine differences would ask the student to stretch its whole space.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from omniretrieve.training.examples import Pair, TrainingData

CERTAINTY = 1e-6
"""Probabilities are clipped to [CERTAINTY, 1 - CERTAINTY] before their log-odds."""


def log_odds(probability: float) -> float:
    clipped = min(max(probability, CERTAINTY), 1.0 - CERTAINTY)
    return math.log(clipped / (1.0 - clipped))


def label_margins(
    data: TrainingData, reranker: Any, progress: Callable[[int], None] | None = None
) -> TrainingData:
    """Each pair with negatives gets the teacher's margins (pairs without stay as they are)."""
    teacher = _hybrid_teacher(data, reranker) or _reranker_teacher(reranker)
    labelled: list[Pair] = []
    for pair in data.pairs:
        if not pair.negatives:
            labelled.append(pair)
            continue
        probabilities = teacher(pair.query, [pair.positive, *pair.negatives])
        scores = [log_odds(float(p)) for p in probabilities]
        margins = tuple(scores[0] - scores[i + 1] for i in range(len(pair.negatives)))
        labelled.append(replace(pair, margins=margins))
        if progress is not None:
            progress(1)
    return data.with_pairs(labelled)


Teacher = Callable[[str, list[str]], Sequence[float]]
"""(query, documents) -> the teacher's probability of relevance of each document."""


def _reranker_teacher(reranker: Any) -> Teacher:
    def scores(query: str, documents: list[str]) -> list[float]:
        response = reranker.rerank(query, documents, return_documents=False)
        by_index = {r.index: float(r.relevance_score) for r in response.results}
        return [by_index[i] for i in range(len(documents))]

    return scores


def _hybrid_teacher(data: TrainingData, reranker: Any) -> Teacher | None:
    """The offline reranker with every query and document embedded once, in large batches
    (its per-call path embeds each candidate list anew, a few texts at a time): the same
    scores, through its ``score_with_similarities``."""
    model: Any = getattr(reranker, "model", None)
    if model is None or not hasattr(model, "score_with_similarities"):
        return None
    from omniretrieve.inputs import TextInput

    pairs = [p for p in data.pairs if p.negatives]
    queries = sorted({p.query for p in pairs})
    documents = sorted({d for p in pairs for d in (p.positive, *p.negatives)})

    def unit_vectors(texts: list[str], task: str) -> dict[str, np.ndarray]:
        if not texts:
            return {}
        output = model.embedder.encode([TextInput(t) for t in texts], task=task)
        vectors = np.asarray(output.vectors, dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return dict(zip(texts, vectors, strict=True))

    query_vectors = unit_vectors(queries, "retrieval.query")
    document_vectors = unit_vectors(documents, "retrieval.passage")

    def scores(query: str, texts: list[str]) -> Sequence[float]:
        cosine = np.stack([document_vectors[t] for t in texts]) @ query_vectors[query]
        return [float(s) for s in model.score_with_similarities(query, texts, cosine)]

    return scores
