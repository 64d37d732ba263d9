"""Combining ranked lists: z-score fusion, reciprocal-rank fusion, and the mix of a reranker's
scores with its first stage's. The methods a collection chooses among are in
:mod:`omniretrieve.fusion.methods`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter

import numpy as np

RRF_K = 60


def zscore_fusion(
    runs: Sequence[Mapping[str, float]], weights: Sequence[float] | None = None
) -> dict[str, float]:
    """Weighted sum of per-list z-scores. A document absent from a list gets that list's lowest
    z-score (it ranked below everything the list returned)."""
    weights = list(weights) if weights is not None else [1.0] * len(runs)
    if len(weights) != len(runs):
        raise ValueError("one weight per run")
    docs, matrix = zscore_matrix(runs)
    fused = np.zeros(len(docs), dtype=np.float64)
    for weight, run, row in zip(weights, runs, matrix, strict=True):
        if run:  # an empty list contributes 0 to every document
            fused += weight * row
    return dict(zip(docs, fused.tolist(), strict=True))


def zscores(values: np.ndarray, *, min_std: float = 1e-12) -> np.ndarray:
    """``(values - mean) / std``; zeros when the values hardly vary (std at most ``min_std``)
    or there are fewer than two: the one z-score routine of fusion and the offline reranker."""
    if values.size < 2:
        return np.zeros_like(values)
    std = float(values.std())
    if std <= min_std:
        return np.zeros_like(values)
    return (values - values.mean()) / std


def mix_scores(rerank: np.ndarray, first_stage: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Per share ``s`` (rows): ``(1 - s) * z(rerank) + s * z(first_stage)`` over the same
    candidates: the one way search and tuning mix a reranker with its first stage."""
    rerank_z = zscores(rerank.astype(np.float64))
    first_z = zscores(first_stage.astype(np.float64))
    return (1 - shares)[:, None] * rerank_z + shares[:, None] * first_z


def empty_matrix(runs: Sequence[Mapping[str, float]]) -> tuple[dict[str, int], np.ndarray]:
    """Each document of the lists with its column (first seen first), and a zero (lists x
    documents) matrix: what every fusion method fills."""
    position: dict[str, int] = {}
    for run in runs:
        for doc in run:
            position.setdefault(doc, len(position))
    return position, np.zeros((len(runs), len(position)), dtype=np.float64)


def zscore_matrix(runs: Sequence[Mapping[str, float]]) -> tuple[list[str], np.ndarray]:
    """The documents of all lists and a (lists x documents) matrix of their z-scores as
    :func:`zscore_fusion` weighs them (a list's lowest for documents it lacks, zeros for an
    empty list): fused scores for many weightings at once are ``weights @ matrix``."""
    position, matrix = empty_matrix(runs)
    for row, run in enumerate(runs):
        if not run:
            continue
        values = np.fromiter(run.values(), dtype=np.float64, count=len(run))
        z = zscores(values)
        matrix[row] = z.min()
        matrix[row, [position[doc] for doc in run]] = z
    return list(position), matrix


def rrf_fusion(
    runs: Sequence[Mapping[str, float]], weights: Sequence[float] | None = None, k: int = RRF_K
) -> dict[str, float]:
    """Reciprocal-rank fusion: sum of ``w / (k + rank)`` over the lists a document is in."""
    weights = list(weights) if weights is not None else [1.0] * len(runs)
    fused: dict[str, float] = {}
    for weight, run in zip(weights, runs, strict=True):
        ranked = sorted(run, key=lambda d: -run[d])
        for rank, doc in enumerate(ranked, start=1):
            fused[doc] = fused.get(doc, 0.0) + weight / (k + rank)
    return fused


def top(scores: Mapping[str, float], k: int) -> list[tuple[str, float]]:
    """The ``k`` best (id, score) pairs, best first; ties broken by id."""
    # sort by id, then stably by score (reverse keeps equal scores in id order)
    return sorted(sorted(scores.items()), key=itemgetter(1), reverse=True)[:k]
