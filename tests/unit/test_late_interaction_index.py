"""The late-interaction index: candidates from a token-level faiss index, rescored exactly by
MaxSim. Checked against brute-force MaxSim over every document (numpy, written here)."""

from __future__ import annotations

import numpy as np
import pytest

from omniretrieve.index.late_interaction import LateInteractionConfig, LateInteractionIndex
from omniretrieve.multi_vector import maxsim


def clustered_documents(count: int, tokens: int, dimension: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((max(8, count // 20), dimension)).astype(np.float32)
    documents = []
    for _ in range(count):
        block = centroids[rng.integers(0, len(centroids), tokens)]
        block = block + 0.3 * rng.standard_normal(block.shape).astype(np.float32)
        documents.append(block / np.linalg.norm(block, axis=1, keepdims=True))
    return documents


def brute_force(query: np.ndarray, documents: list[np.ndarray], k: int, reduce: str):
    scores = np.array([maxsim(query, d, reduce) for d in documents])
    order = np.lexsort((np.arange(len(documents)), -scores))[:k]
    return [(int(i), float(scores[i])) for i in order]


@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_flat_search_equals_brute_force(reduce: str) -> None:
    documents = clustered_documents(200, 12, 16, seed=0)
    index = LateInteractionIndex(documents, LateInteractionConfig(reduce=reduce))
    assert index.kind == "exact"
    for seed in range(5):
        query = clustered_documents(1, 8, 16, seed=100 + seed)[0]
        found = index.search(query, 10)
        expected = brute_force(query, documents, 10, reduce)
        assert [row for row, _ in found] == [row for row, _ in expected]
        assert [s for _, s in found] == pytest.approx([s for _, s in expected], abs=1e-5)


def test_centroid_candidates_keep_recall_at_10() -> None:
    documents = clustered_documents(2000, 16, 32, seed=1)
    config = LateInteractionConfig(exact_threshold=1000)  # rescoring 256 of 2,000
    index = LateInteractionIndex(documents, config)
    assert index.kind == "centroids"
    recalls = []
    for seed in range(10):
        query = clustered_documents(1, 8, 32, seed=200 + seed)[0]
        found = {row for row, _ in index.search(query, 10)}
        expected = {row for row, _ in brute_force(query, documents, 10, "mean")}
        recalls.append(len(found & expected) / 10)
    assert np.mean(recalls) >= 0.9


def test_codes_trade_memory_for_little_error() -> None:
    documents = clustered_documents(300, 12, 16, seed=2)
    query = clustered_documents(1, 8, 16, seed=300)[0]
    exact = LateInteractionIndex(documents).exact(query, range(300))
    sizes = {}
    for codes in ("float32", "float16", "int8"):
        index = LateInteractionIndex(documents, LateInteractionConfig(codes=codes))
        np.testing.assert_allclose(index.exact(query, range(300)), exact, atol=2e-2)
        sizes[codes] = index.memory_bytes
    assert sizes["int8"] < sizes["float16"] < sizes["float32"]


def test_a_filter_mask_keeps_only_allowed_rows() -> None:
    documents = clustered_documents(100, 8, 16, seed=3)
    allowed = np.zeros(100, dtype=bool)
    allowed[::7] = True
    index = LateInteractionIndex(documents)
    found = index.search(documents[14][:4], 5, allowed=allowed)
    assert found and all(allowed[row] for row, _ in found)
    assert found[0][0] == 14  # its own tokens: the best allowed document


def test_empty_index_and_empty_query() -> None:
    assert LateInteractionIndex([]).search(np.ones((2, 4), np.float32), 3) == []
    documents = clustered_documents(5, 4, 8, seed=4)
    assert LateInteractionIndex(documents).search(np.zeros((0, 8), np.float32), 3) == []


def test_the_centroid_path_filters_too() -> None:
    documents = clustered_documents(600, 8, 16, seed=5)
    allowed = np.zeros(600, dtype=bool)
    allowed[1::3] = True
    index = LateInteractionIndex(documents, LateInteractionConfig(exact_threshold=100))
    found = index.search(documents[301][:4], 5, allowed=allowed)
    assert found and all(allowed[row] for row, _ in found) and found[0][0] == 301
