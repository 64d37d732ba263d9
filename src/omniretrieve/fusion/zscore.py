"""Z-score fusion: each list's scores standardised within the list, a document absent from a
list given that list's lowest z-score (it ranked below everything the list returned)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from omniretrieve.fusion import zscore_matrix


class ZScore:
    name = "zscore"
    description = "weighted sum of per-list z-scores (fixed weights)"

    def matrix(self, runs: Sequence[Mapping[str, float]]) -> tuple[list[str], np.ndarray]:
        return zscore_matrix(runs)
