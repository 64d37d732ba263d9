"""Paired significance tests between pipelines' per-query scores (scipy.stats), and the
multiple-comparison correction of a family of them (statsmodels), as ranx reports them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from math import nan

import numpy as np

from omniretrieve.errors import InputError

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


CORRECTIONS = ("holm", "bonferroni", "none")
"""Multiple-comparison corrections of the p-values of one family of tests (statsmodels')."""


@dataclass(frozen=True)
class PairTest:
    """One compared pair (A, B) on one task and metric, its p-value corrected within its
    family: every pair tested on the same dataset, task and metric."""

    dataset: str
    task: str
    metric: str
    a: str
    b: str
    comparison: Comparison
    corrected_p: float
    """The randomisation test's p-value after the correction (Holm: step-down over the
    family; Bonferroni: times the family's size, at most 1)."""
    family: int
    """How many tests the correction counted."""
    alpha: float = 0.05

    @property
    def significant(self) -> bool:
        return self.corrected_p < self.alpha

    @property
    def winner(self) -> str | None:
        """The pipeline that is significantly better, if either is."""
        if not self.significant or self.comparison.delta == 0:
            return None
        return self.b if self.comparison.delta > 0 else self.a

    def to_json(self) -> dict[str, object]:
        test = self.comparison
        return {
            "dataset": self.dataset,
            "task": self.task,
            "metric": self.metric,
            "a": self.a,
            "b": self.b,
            "queries": test.queries,
            "mean_a": round(test.mean_a, 5),
            "mean_b": round(test.mean_b, 5),
            "delta": round(test.delta, 5),
            "t_test_p": test.t_test_p,
            "randomisation_p": test.randomisation_p,
            "corrected_p": self.corrected_p,
            "family": self.family,
            "significant": self.significant,
        }


def corrected_p_values(p_values: list[float], method: str, alpha: float = 0.05) -> list[float]:
    """``p_values`` (one family) corrected by ``method`` (one of :data:`CORRECTIONS`)."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; one of {', '.join(CORRECTIONS)}")
    if method == "none" or not p_values:
        return list(p_values)
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(p_values, alpha=alpha, method=method)[1]]


def pairwise_tests(
    per_query: Mapping[tuple[str, str, str, str], Mapping[str, float]],
    pairs: list[tuple[str, str]],
    *,
    correction: str = "holm",
    resamples: int = 10_000,
    alpha: float = 0.05,
) -> list[PairTest]:
    """Every pair on every (dataset, task, metric) where both pipelines have per-query
    scores (``per_query[(dataset, task, metric, pipeline)]``), each family corrected."""
    families: dict[tuple[str, str, str], list[tuple[str, str, Comparison]]] = {}
    for dataset, task, metric, pipeline in per_query:
        for a, b in pairs:
            if pipeline != a or (dataset, task, metric, b) not in per_query:
                continue
            scores_a = per_query[(dataset, task, metric, a)]
            scores_b = per_query[(dataset, task, metric, b)]
            if len(set(scores_a) & set(scores_b)) < 2:
                continue
            result = compare(scores_a, scores_b, resamples=resamples)
            families.setdefault((dataset, task, metric), []).append((a, b, result))
    tests: list[PairTest] = []
    for (dataset, task, metric), members in families.items():
        p_values = [m[2].randomisation_p if resamples else m[2].t_test_p for m in members]
        adjusted = corrected_p_values(p_values, correction, alpha)
        tests.extend(
            PairTest(dataset, task, metric, a, b, result, p, len(members), alpha)
            for (a, b, result), p in zip(members, adjusted, strict=True)
        )
    return tests


def parse_pairs(
    items: Sequence[str | tuple[str, str]], pipelines: Sequence[str]
) -> list[tuple[str, str]]:
    """``--compare`` values: ``A:B`` pairs, or ``all`` for every pair of ``pipelines`` (as
    ranx compares all runs)."""
    import itertools

    pairs: list[tuple[str, str]] = []
    for item in items:
        if item == "all":
            pairs += list(itertools.combinations(pipelines, 2))
        else:
            pairs.append(parse_pair(item, pipelines))
    return list(dict.fromkeys(pairs))


def parse_pair(item: str | tuple[str, str], pipelines: Sequence[str]) -> tuple[str, str]:
    """``A:B`` (or a pair) naming two of ``pipelines``; a pipeline may hold ':' itself
    (``dense:model``), so the split is at the ':' that leaves two known pipelines."""
    if isinstance(item, tuple):
        if len(item) == 2 and item[0] in pipelines and item[1] in pipelines:
            return item
        raise InputError(f"compare {item!r}: name two evaluated pipelines", field="compare")
    for index, char in enumerate(item):
        if char == ":" and item[:index] in pipelines and item[index + 1 :] in pipelines:
            return item[:index], item[index + 1 :]
    raise InputError(
        f"--compare {item!r}: name two of the evaluated pipelines as A:B", field="compare"
    )
