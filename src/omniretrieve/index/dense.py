"""Dense vectors behind faiss: exact (flat) for small sets, HNSW above a threshold; float, int8
(scalar quantisation) or binary codes, the quantised ones rescored with the float vectors.

Vectors are L2-normalised, so inner product is cosine. Row ``i`` of the index is row ``i`` of
``vectors``; callers map rows to passages and documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any, Literal

import numpy as np

Quantization = Literal["float", "int8", "binary"]
QUANTIZATIONS: tuple[str, ...] = ("float", "int8", "binary")


@dataclass(frozen=True)
class DenseConfig:
    quantization: Quantization = "float"
    hnsw_threshold: int = 50_000
    """Collections with more rows than this use HNSW; smaller ones exact search."""
    hnsw_m: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 128
    rescore_factor: int = 4
    """int8 search fetches ``k * rescore_factor`` candidates, rescored with float vectors."""
    binary_rescore_factor: int = 16
    """Binary codes keep far less; they fetch ``k * binary_rescore_factor`` candidates."""


class DenseIndex:
    def __init__(self, vectors: np.ndarray, config: DenseConfig | None = None) -> None:
        faiss: Any = import_module("faiss")  # untyped where its SWIG stubs are wrong

        self.config = config or DenseConfig()
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.size, self.dimension = self.vectors.shape
        self.kind = "hnsw" if self.size > self.config.hnsw_threshold else "flat"
        quantization = self.config.quantization
        if quantization == "binary":
            bits = self.dimension - self.dimension % 8
            self._index: Any = (
                faiss.IndexBinaryHNSW(bits, self.config.hnsw_m)
                if self.kind == "hnsw"
                else faiss.IndexBinaryFlat(bits)
            )
            self._index.add(self._codes(self.vectors))
        else:
            if self.kind == "hnsw":
                if quantization == "int8":
                    self._index = faiss.IndexHNSWSQ(
                        self.dimension,
                        faiss.ScalarQuantizer.QT_8bit,
                        self.config.hnsw_m,
                        faiss.METRIC_INNER_PRODUCT,
                    )
                else:
                    self._index = faiss.IndexHNSWFlat(
                        self.dimension, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT
                    )
                self._index.hnsw.efConstruction = self.config.hnsw_ef_construction
            elif quantization == "int8":
                self._index = faiss.IndexScalarQuantizer(
                    self.dimension, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
                )
            else:
                self._index = faiss.IndexFlatIP(self.dimension)
            if not self._index.is_trained and self.size:
                self._index.train(self.vectors)
            if self.size:
                self._index.add(self.vectors)

    def _codes(self, vectors: np.ndarray) -> np.ndarray:
        bits = self.dimension - self.dimension % 8
        return np.packbits(vectors[:, :bits] > 0, axis=1)

    def search(
        self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) of the best ``k`` rows per query, best first; -1 rows pad short lists.

        ``allowed`` restricts the search to those rows (metadata filters)."""
        faiss: Any = import_module("faiss")  # untyped where its SWIG stubs are wrong

        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, self.size)) if self.size else 1
        if self.size == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        exact = self.config.quantization == "float"
        factor = (
            self.config.binary_rescore_factor
            if self.config.quantization == "binary"
            else self.config.rescore_factor
        )
        fetch = k if exact else min(self.size, k * factor)
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            if self.kind == "hnsw":
                cls = (
                    faiss.SearchParametersHNSW
                    if self.config.quantization != "binary"
                    else faiss.SearchParameters
                )
                params = cls(sel=selector)
            else:
                params = faiss.SearchParameters(sel=selector)
        if self.kind == "hnsw" and self.config.quantization != "binary":
            if params is None:
                params = faiss.SearchParametersHNSW()
            params.efSearch = max(self.config.hnsw_ef_search, fetch)
        if self.config.quantization == "binary":
            _, rows = self._index.search(self._codes(queries), fetch, params=params)
        else:
            _, rows = self._index.search(queries, fetch, params=params)
        return self._rescore(queries, rows, k)

    def _rescore(
        self, queries: np.ndarray, rows: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products for the candidate rows, best ``k`` first."""
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_rows = np.full((len(queries), k), -1, dtype=np.int64)
        for i, (query, candidates) in enumerate(zip(queries, rows, strict=True)):
            valid = candidates[candidates >= 0]
            if valid.size == 0:
                continue
            scores = self.vectors[valid] @ query
            order = np.argsort(-scores, kind="stable")[:k]
            out_scores[i, : order.size] = scores[order]
            out_rows[i, : order.size] = valid[order]
        return out_scores, out_rows
