"""The diversity stage: after the rerank, before the hits. Two operations on a ranked list,
each optional:

- **Maximal marginal relevance** (Carbonell & Goldstein, 1998): the list is rebuilt one pick
  at a time, each pick the candidate with the best
  ``lambda * relevance - (1 - lambda) * max cosine to the ones already picked``. Relevance is
  the list's own score, min-max scaled to [0, 1] over the candidates (fused, BM25 and rerank
  scores live on different scales; cosines of normalised vectors lie in [-1, 1]); lambda 1
  keeps the order, 0 orders by novelty alone.
- **Near-duplicate collapse**: going down the list, a candidate whose vector's cosine with an
  earlier kept one reaches the threshold (or, without vectors, whose word-shingle Jaccard
  similarity does) is folded into it: it leaves the list and is listed under the kept one.

Both read one vector per document (the caller's: a collection's first passage vectors) and
are pure functions of their inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from omniretrieve.errors import InputError

DUPLICATE_COSINE = 0.95
"""Cosine at or above which two documents' vectors make them near-duplicates."""
DUPLICATE_JACCARD = 0.8
"""Word 5-shingle Jaccard similarity at or above which two texts are near-duplicates."""
SHINGLE = 5


def check_diversity(value: float | None) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise InputError("diversity (MMR's lambda) lies within 0 and 1", field="diversity")


def mmr(
    ranked: Sequence[tuple[str, float]],
    vectors: Mapping[str, np.ndarray],
    lam: float,
    count: int | None = None,
) -> list[tuple[str, float]]:
    """``ranked`` (id, score), best first, re-ordered by maximal marginal relevance; the
    first ``count`` picks (all when None), each with its MMR value when picked (never higher
    than the one before it: the penalties only grow). A candidate without a vector counts as
    similar to nothing."""
    check_diversity(lam)
    if not ranked:
        return []
    scores = np.array([s for _, s in ranked], dtype=np.float64)
    spread = float(scores.max() - scores.min())
    relevance = (scores - scores.min()) / spread if spread > 0 else np.ones_like(scores)
    units = [_unit(vectors.get(doc_id)) for doc_id, _ in ranked]
    closest = np.full(len(ranked), -np.inf)  # max cosine to a picked candidate
    left = list(range(len(ranked)))
    picked: list[tuple[int, float]] = []
    while left and (count is None or len(picked) < count):
        novelty = np.where(np.isfinite(closest[left]), closest[left], 0.0)
        value = lam * relevance[left] - (1.0 - lam) * novelty
        position = int(np.argmax(value))  # the first of equals: the better ranked
        best = left[position]
        picked.append((best, float(value[position])))
        left.remove(best)
        chosen = units[best]
        if chosen is not None:
            for i in left:
                other = units[i]
                if other is not None:
                    closest[i] = max(closest[i], float(other @ chosen))
    return [(ranked[i][0], value) for i, value in picked]


@dataclass
class Collapsed:
    kept: list[tuple[str, float]]
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    """Kept id -> the ids folded into it, in their order in the list."""


def collapse_duplicates(
    ranked: Sequence[tuple[str, float]],
    vectors: Mapping[str, np.ndarray],
    text: Callable[[str], str],
    *,
    cosine: float = DUPLICATE_COSINE,
    jaccard: float = DUPLICATE_JACCARD,
) -> Collapsed:
    """Near-identical candidates folded into the best-ranked of them."""
    out = Collapsed([])
    kept_units: list[np.ndarray | None] = []
    kept_shingles: list[frozenset[str] | None] = []
    for doc_id, score in ranked:
        unit = _unit(vectors.get(doc_id))
        shingles: frozenset[str] | None = None
        into: str | None = None
        for index, (kept_id, _) in enumerate(out.kept):
            other = kept_units[index]
            if unit is not None and other is not None:
                if float(unit @ other) >= cosine:
                    into = kept_id
                    break
                continue
            if shingles is None:
                shingles = _shingles(text(doc_id))
            if kept_shingles[index] is None:
                kept_shingles[index] = _shingles(text(kept_id))
            if _jaccard(shingles, kept_shingles[index]) >= jaccard:
                into = kept_id
                break
        if into is not None:
            out.duplicates.setdefault(into, []).append(doc_id)
            continue
        out.kept.append((doc_id, score))
        kept_units.append(unit)
        kept_shingles.append(shingles)
    return out


def _unit(vector: np.ndarray | None) -> np.ndarray | None:
    if vector is None:
        return None
    flat = np.asarray(vector, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(flat))
    return flat / norm if norm > 0 else None


def _shingles(text: str) -> frozenset[str]:
    words = text.lower().split()
    if len(words) < SHINGLE:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1))


def _jaccard(a: frozenset[str] | None, b: frozenset[str] | None) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
