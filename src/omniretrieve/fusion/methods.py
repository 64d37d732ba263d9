"""Fusion methods behind one interface: each turns one query's ranked lists into a
(lists x documents) matrix whose weighted sum is the fused score (``weights @ matrix``), so
one method serves search (one weighting) and tuning (every candidate weighting at once). A
new method is one module with a :class:`FusionMethod` and one line in :data:`FUSION_METHODS`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from omniretrieve.fusion.adaptive import AdaptiveZScore
from omniretrieve.fusion.rank import ReciprocalRank
from omniretrieve.fusion.zscore import ZScore


class FusionMethod(Protocol):
    name: str
    description: str

    def matrix(self, runs: Sequence[Mapping[str, float]]) -> tuple[list[str], np.ndarray]:
        """The documents of all lists and a (lists x documents) matrix: the fused score of a
        weighting ``w`` (one weight per list) is ``w @ matrix``."""
        ...


FUSION_METHODS: dict[str, FusionMethod] = {
    method.name: method for method in (ZScore(), ReciprocalRank(), AdaptiveZScore())
}


def fusion_method(name: str) -> FusionMethod:
    method = FUSION_METHODS.get(name)
    if method is None:
        raise KeyError(f"no fusion method {name!r}; known: {', '.join(FUSION_METHODS)}")
    return method


def fuse(
    method: FusionMethod, runs: Sequence[Mapping[str, float]], weights: Sequence[float] | None
) -> dict[str, float]:
    """The fused scores of ``runs`` (equal weights when None)."""
    chosen = np.asarray(weights if weights is not None else [1.0] * len(runs), dtype=np.float64)
    if chosen.shape != (len(runs),):
        raise ValueError("one weight per run")
    docs, matrix = method.matrix(runs)
    if not docs:
        return {}
    return dict(zip(docs, (chosen @ matrix).tolist(), strict=True))
