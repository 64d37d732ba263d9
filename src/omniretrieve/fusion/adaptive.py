"""Query-adaptive z-score fusion: each list's z-scores are scaled, for this query, by how
decisive the list is: the gap between its best z-score and its tenth best. A flat list (BM25
matching only common words, a dense list with no clear neighbour) says little and counts
less; a list with a clear winner counts more. The scales average to 1 over the query's lists,
so the fixed weights keep their meaning."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from omniretrieve.fusion import zscore_matrix

GAP_RANK = 10
"""The gap is measured from the best z-score to this rank's (or the list's last)."""


class AdaptiveZScore:
    name = "zscore-adaptive"
    description = f"z-scores scaled per query by each list's top-1 to top-{GAP_RANK} gap"

    def matrix(self, runs: Sequence[Mapping[str, float]]) -> tuple[list[str], np.ndarray]:
        docs, matrix = zscore_matrix(runs)
        gaps = np.array([_gap(run, row) for run, row in zip(runs, matrix, strict=True)])
        present = gaps > 0
        if present.any():
            scales = np.where(present, gaps / gaps[present].mean(), 0.0)
            matrix = matrix * scales[:, None]
        return docs, matrix


def _gap(run: Mapping[str, float], row: np.ndarray) -> float:
    """A list's top-1 to top-:data:`GAP_RANK` z-score gap (0 for an empty or flat list)."""
    if len(run) < 2:
        return 0.0
    values = np.sort(row)[::-1][: len(run)]  # the list's own z-scores, best first
    return float(values[0] - values[min(GAP_RANK, len(values)) - 1])
