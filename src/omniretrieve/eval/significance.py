"""Paired significance tests between two pipelines' per-query scores (scipy.stats)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import nan

import numpy as np

BATCH_CELLS = 4_000_000
"""Resampled values held at once by the randomisation test (32 MB of float64)."""


@dataclass(frozen=True)
class Comparison:
    mean_a: float
    mean_b: float
    queries: int
    t_test_p: float
    """Two-sided paired t-test."""
    randomisation_p: float
    """Two-sided paired randomisation (sign-flip permutation) test of the mean difference
    (NaN when ``resamples`` is 0)."""

    @property
    def delta(self) -> float:
        return self.mean_b - self.mean_a


def compare(
    per_query_a: Mapping[str, float],
    per_query_b: Mapping[str, float],
    *,
    resamples: int = 10_000,
    seed: int = 0,
) -> Comparison:
    """Compare B against A on the queries both were scored on."""
    from scipy import stats

    shared = sorted(set(per_query_a) & set(per_query_b))
    if len(shared) < 2:
        raise ValueError("a paired test needs at least two shared queries")
    a = np.array([per_query_a[q] for q in shared], dtype=np.float64)
    b = np.array([per_query_b[q] for q in shared], dtype=np.float64)
    if np.allclose(a, b):
        return Comparison(float(a.mean()), float(b.mean()), len(shared), 1.0, 1.0)
    t_test = stats.ttest_rel(b, a)
    if resamples == 0:
        return Comparison(float(a.mean()), float(b.mean()), len(shared), float(t_test.pvalue), nan)
    permutation = stats.permutation_test(
        (b, a),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        batch=max(1, BATCH_CELLS // len(shared)),  # bounded memory on large query sets
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return Comparison(
        float(a.mean()),
        float(b.mean()),
        len(shared),
        float(t_test.pvalue),
        float(permutation.pvalue),
    )
