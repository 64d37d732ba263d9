"""Combining ranked lists: z-score fusion (the default) and reciprocal-rank fusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
    normalised: list[dict[str, float]] = []
    floors: list[float] = []
    for run in runs:
        if not run:
            normalised.append({})
            floors.append(0.0)
            continue
        values = np.fromiter(run.values(), dtype=np.float64)
        std = float(values.std())
        z = (values - values.mean()) / std if std > 1e-12 else np.zeros_like(values)
        normalised.append(dict(zip(run, z.tolist(), strict=True)))
        floors.append(float(z.min()))
    fused: dict[str, float] = {}
    for doc in {doc for run in runs for doc in run}:
        fused[doc] = sum(
            w * z.get(doc, floor) for w, z, floor in zip(weights, normalised, floors, strict=True)
        )
    return fused


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
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:k]
