"""Representations beyond one vector per input, and their scores: learned-sparse token weights
(BGE-M3's lexical matching) and per-token vectors (late interaction: ColBERT's MaxSim).

Both scores are FlagEmbedding's ``BGEM3FlagModel`` ones:

- lexical matching: the sum, over the token ids present in both, of the query's weight times
  the document's;
- MaxSim: for each query vector, its largest dot product with a document vector; the mean over
  the query's vectors (ColBERT and ColPali sum them instead: the same order for one query).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OUTPUTS: tuple[str, ...] = ("dense", "sparse", "multivector")
"""What an embedding model can return per input: one vector, learned-sparse token weights,
one vector per token."""


@dataclass(frozen=True)
class SparseEmbedding:
    """Token weights of one input: ``indices`` (token ids, ascending) and their ``values``."""

    indices: np.ndarray
    """int64 token ids, ascending, each once."""
    values: np.ndarray
    """float32 weights, positive."""
    tokens: tuple[str, ...] | None = None
    """The tokens of ``indices`` as the tokenizer writes them, where asked for."""

    def to_json(self) -> dict[str, list]:
        return {
            "indices": [int(i) for i in self.indices],
            "values": [float(v) for v in self.values],
            **({"tokens": list(self.tokens)} if self.tokens is not None else {}),
        }

    def as_dict(self) -> dict[int, float]:
        return {int(i): float(v) for i, v in zip(self.indices, self.values, strict=True)}

    @classmethod
    def from_dict(cls, weights: dict[int, float]) -> SparseEmbedding:
        ids = sorted(weights)
        return cls(
            np.array(ids, dtype=np.int64), np.array([weights[i] for i in ids], dtype=np.float32)
        )


def lexical_match(query: SparseEmbedding, document: SparseEmbedding) -> float:
    """BGE-M3's lexical matching score: sum of weight products over shared token ids."""
    shared, in_query, in_document = np.intersect1d(
        query.indices, document.indices, assume_unique=True, return_indices=True
    )
    if not len(shared):
        return 0.0
    products = query.values[in_query].astype(np.float64) * document.values[in_document]
    return float(products.sum())


def maxsim(query: np.ndarray, document: np.ndarray, reduce: str = "mean") -> float:
    """Late interaction: each query vector's largest dot product with the document's vectors
    ((q, d) and (t, d) float arrays), reduced over the query's vectors by their ``mean``
    (BGE-M3) or ``sum`` (ColBERT, ColPali); 0 for an empty side."""
    if reduce not in ("mean", "sum"):
        raise ValueError(f"reduce is mean or sum, not {reduce!r}")
    if not len(query) or not len(document):
        return 0.0
    best = (query.astype(np.float32) @ document.astype(np.float32).T).max(axis=1)
    return float(best.mean() if reduce == "mean" else best.sum())
