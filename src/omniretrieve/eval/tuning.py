"""Choosing hybrid fusion weights on training queries (never on the queries reported)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omniretrieve.errors import InputError
from omniretrieve.eval.metrics import evaluate_run

BM25_WEIGHTS: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
"""BM25's share of the weight; the embedders split the rest equally."""


@dataclass(frozen=True)
class FusionFit:
    weights: tuple[float, ...]
    """BM25's first, then one per embedder: the best on the training queries."""
    metric: str
    score: float
    grid: dict[float, float]
    """BM25 weight -> the metric on the training queries."""
    queries: int


def fit_fusion_weights(
    collection: Any,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    embedders: Sequence[str] | None = None,
    grid: Sequence[float] = BM25_WEIGHTS,
    metric: str = "ndcg@10",
    show_progress: bool = False,
) -> FusionFit:
    """Grid-search BM25's weight against the embedders' for ``collection``'s hybrid search.
    Ties go to the weight closest to equal (0.5), the default."""
    judged = {q: t for q, t in queries.items() if qrels.get(q)}
    if not judged:
        raise InputError("no judged training queries to fit fusion weights on", field="split")
    fields = tuple(embedders or collection.settings.embedders)
    if not fields:
        raise InputError("a BM25-only collection has nothing to fuse", field="embedders")
    depth = int(metric.partition("@")[2] or 10)
    scores: dict[float, float] = {}
    for bm25_weight in grid:
        weights = (bm25_weight, *[(1 - bm25_weight) / len(fields)] * len(fields))
        hits = collection.search_many(
            list(judged.values()),
            top_k=depth,
            mode="hybrid",
            embedders=fields,
            fusion_weights=weights,
            show_progress=show_progress,
        )
        run = {q: {h.doc_id: h.score for h in found} for q, found in zip(judged, hits, strict=True)}
        scores[bm25_weight] = evaluate_run(qrels, run, [metric]).mean[metric]
    best = max(scores, key=lambda w: (round(scores[w], 6), -abs(w - 0.5)))
    weights = (best, *[(1 - best) / len(fields)] * len(fields))
    return FusionFit(weights, metric, scores[best], scores, len(judged))
