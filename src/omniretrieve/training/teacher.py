"""A teacher's margins for margin distillation (Margin-MSE, as GPL does it).

The teacher is a reranker (the collection's configured one, or any reranker id): it scores
each pair's positive and negatives, and the student embedder learns to reproduce the
differences ``score(positive) - score(negative)``. Pseudo-queries are noisy labels; the
teacher's graded margins say how much better the positive really is, which is what keeps
unsupervised adaptation from learning the noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from omniretrieve.training.examples import Pair, TrainingData


def label_margins(
    data: TrainingData, reranker: Any, progress: Callable[[int], None] | None = None
) -> TrainingData:
    """Each pair with negatives gets the teacher's margins (pairs without stay as they are)."""
    labelled: list[Pair] = []
    for pair in data.pairs:
        if not pair.negatives:
            labelled.append(pair)
            continue
        response = reranker.rerank(
            pair.query, [pair.positive, *pair.negatives], return_documents=False
        )
        scores = {r.index: float(r.relevance_score) for r in response.results}
        margins = tuple(scores[0] - scores[i + 1] for i in range(len(pair.negatives)))
        labelled.append(replace(pair, margins=margins))
        if progress is not None:
            progress(1)
    return data.with_pairs(labelled)
