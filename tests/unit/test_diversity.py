"""MMR and near-duplicate collapse, against orders computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from omniretrieve.errors import InputError
from omniretrieve.index.diversity import collapse_duplicates, mmr

# scores 10, 8, 6, 0 scale to relevance 1, 0.8, 0.6, 0
RANKED = [("a", 10.0), ("b", 8.0), ("c", 6.0), ("d", 0.0)]
VECTORS = {
    "a": np.array([1.0, 0.0]),
    "b": np.array([2.0, 0.0]),  # a's direction: cosine 1 with a
    "c": np.array([0.0, 1.0]),
    "d": np.array([0.6, 0.8]),
}


def ids(ranked: list[tuple[str, float]]) -> list[str]:
    return [doc_id for doc_id, _ in ranked]


def test_mmr_by_hand() -> None:
    """lambda 0.5: a first (all novel: 0.5 x relevance); then b 0.4 - 0.5 x 1 = -0.1,
    c 0.3 - 0 = 0.3, d 0 - 0.5 x 0.6 = -0.3: c; then b -0.1, d 0 - 0.5 x 0.8 = -0.4: b; d."""
    assert ids(mmr(RANKED, VECTORS, 0.5)) == ["a", "c", "b", "d"]


def test_mmr_at_its_ends() -> None:
    assert ids(mmr(RANKED, VECTORS, 1.0)) == ["a", "b", "c", "d"]  # relevance alone
    # novelty alone: a (the first of equals), c (cosine 0 with a), d (0.8 < b's 1), b
    assert ids(mmr(RANKED, VECTORS, 0.0)) == ["a", "c", "d", "b"]


def test_mmr_scores_are_its_values_and_counts() -> None:
    picked = mmr(RANKED, VECTORS, 0.5, count=2)
    assert picked == [("a", pytest.approx(0.5)), ("c", pytest.approx(0.3))]
    values = [value for _, value in mmr(RANKED, VECTORS, 0.5)]
    assert values == pytest.approx([0.5, 0.3, -0.1, -0.4])  # as picked: never rising
    assert mmr([], VECTORS, 0.5) == []
    with pytest.raises(InputError, match="within 0 and 1"):
        mmr(RANKED, VECTORS, 1.5)


def test_a_candidate_without_a_vector_is_similar_to_nothing() -> None:
    vectors = {k: v for k, v in VECTORS.items() if k != "b"}
    assert ids(mmr(RANKED, vectors, 0.5)) == ["a", "b", "c", "d"]


def test_collapse_by_vectors_and_by_shingles() -> None:
    text = {
        "a": "x",
        "b": "x",
        "c": "y",
        "d": "z",
        "e": "the quick brown fox jumps over the lazy dog today",
        "f": "the quick brown fox jumps over the lazy dog today",
    }
    ranked = [*RANKED, ("e", -1.0), ("f", -2.0)]
    collapsed = collapse_duplicates(ranked, VECTORS, text.__getitem__)
    assert ids(collapsed.kept) == ["a", "c", "d", "e"]
    assert collapsed.duplicates == {"a": ["b"], "e": ["f"]}
