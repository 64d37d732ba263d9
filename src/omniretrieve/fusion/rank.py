"""Reciprocal-rank fusion: a document earns ``1 / (k + rank)`` from each list it is in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from omniretrieve.fusion import RRF_K, empty_matrix


class ReciprocalRank:
    name = "rrf"
    description = f"reciprocal-rank fusion, sum of w / ({RRF_K} + rank)"

    def __init__(self, k: int = RRF_K) -> None:
        self.k = k

    def matrix(self, runs: Sequence[Mapping[str, float]]) -> tuple[list[str], np.ndarray]:
        position, matrix = empty_matrix(runs)
        for row, run in enumerate(runs):
            ranked = sorted(run, key=lambda d: -run[d])
            for rank, doc in enumerate(ranked, start=1):
                matrix[row, position[doc]] = 1.0 / (self.k + rank)
        return list(position), matrix
