"""BM25 over bm25s, with per-language analysis (:mod:`omniretrieve.text.analyzers`).

:class:`BM25Index` is the static in-memory index used by the offline reranker (over a candidate
set) and by the benchmarks (over a whole corpus).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omniretrieve.text.analyzers import Analyzer

DEFAULT_K1 = 1.2
DEFAULT_B = 0.75
QUERY_TERMS_CACHE = 65_536
"""Analysed queries kept per index (an evaluation asks the same query once per pipeline)."""


class BM25Index:
    """A bm25s index over a list of texts; scores and top-k search."""

    def __init__(
        self,
        texts: Sequence[str],
        *,
        analyzer: Analyzer | None = None,
        languages: Sequence[str | None] | None = None,
        tokens: Sequence[list[str]] | None = None,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        show_progress: bool = False,
    ) -> None:
        import bm25s

        self.analyzer = analyzer or Analyzer()
        self.size = len(texts)
        self._bm25 = bm25s.BM25(k1=k1, b=b, method="lucene")
        if tokens is None:
            tokens = self.analyzer.tokenize(texts, languages)
        tokens = list(tokens)
        # bm25s cannot index an all-empty corpus; a placeholder token keeps shapes right.
        if not any(tokens):
            tokens = [["\x00"] for _ in tokens]
        self._bm25.index(tokens, show_progress=show_progress)
        self._query_terms: dict[tuple[str, str | None], list[str]] = {}

    def scores(self, query: str, language: str | None = None) -> np.ndarray:
        """BM25 score of every indexed text for ``query`` (zeros when no term matches)."""
        known = self._query_terms.get((query, language))
        if known is None:
            query_tokens = self.analyzer.tokenize([query], [language])[0]
            known = [t for t in query_tokens if t in self._bm25.vocab_dict]
            if len(self._query_terms) >= QUERY_TERMS_CACHE:
                self._query_terms.clear()
            self._query_terms[(query, language)] = known
        if not known:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (indices, scores) per query, best first."""
        k = min(k, self.size)
        indices = np.zeros((len(queries), k), dtype=np.int64)
        scores = np.zeros((len(queries), k), dtype=np.float32)
        for row, query in enumerate(queries):
            all_scores = self.scores(query)
            top = np.argpartition(-all_scores, k - 1)[:k] if k < self.size else np.arange(self.size)
            top = top[np.argsort(-all_scores[top], kind="stable")]
            indices[row], scores[row] = top, all_scores[top]
        return indices, scores
