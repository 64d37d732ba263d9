"""faiss adapter: flat and HNSW, float / int8 / binary with rescoring, filters."""

from __future__ import annotations

import numpy as np
import pytest

from omniretrieve.index.dense import DenseConfig, DenseIndex


def clustered(n: int, d: int = 64, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    points = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, d))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def recall_at_10(index: DenseIndex, vectors: np.ndarray, queries: np.ndarray) -> float:
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    _, found = index.search(queries, 10)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, found, strict=True)]))


@pytest.mark.parametrize(
    ("quantization", "threshold", "kind", "minimum"),
    [
        ("float", 10**9, "flat", 1.0),
        ("float", 100, "hnsw", 0.95),
        ("int8", 10**9, "flat", 0.97),
        ("int8", 100, "hnsw", 0.9),
        ("binary", 10**9, "flat", 0.5),  # sign bits are a coarse first pass
    ],
)
def test_recall_against_exact_search(quantization, threshold, kind, minimum) -> None:
    vectors = clustered(3000, d=384)
    queries = clustered(50, d=384, seed=1)
    index = DenseIndex(vectors, DenseConfig(quantization=quantization, hnsw_threshold=threshold))
    assert index.kind == kind
    assert recall_at_10(index, vectors, queries) >= minimum


def test_rescored_scores_are_exact_inner_products() -> None:
    vectors = clustered(500)
    index = DenseIndex(vectors, DenseConfig(quantization="int8"))
    scores, rows = index.search(vectors[:3], 5)
    np.testing.assert_allclose(
        scores, np.einsum("qd,qkd->qk", vectors[:3], vectors[rows]), atol=1e-5
    )
    assert list(rows[:, 0]) == [0, 1, 2]


@pytest.mark.parametrize("threshold", [10**9, 100])
def test_allowed_rows(threshold: int) -> None:
    vectors = clustered(1000)
    index = DenseIndex(vectors, DenseConfig(hnsw_threshold=threshold))
    allowed = np.arange(0, 1000, 7)
    _, rows = index.search(vectors[:4], 10, allowed=allowed)
    assert set(rows[rows >= 0].tolist()) <= set(allowed.tolist())


def test_empty_and_small() -> None:
    empty = DenseIndex(np.zeros((0, 8), np.float32))
    scores, rows = empty.search(np.ones((1, 8), np.float32), 5)
    assert rows.shape == (1, 0)
    small = DenseIndex(clustered(3, d=8))
    _, rows = small.search(clustered(1, d=8, seed=2), 10)
    assert sorted(rows[0].tolist()) == [0, 1, 2]
