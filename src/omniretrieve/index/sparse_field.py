"""BM25 over a collection's documents: built lazily (per document language with
``language="auto"``), searched with filters, dropped when the documents change."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from omniretrieve.index.languages import LanguageCache
from omniretrieve.index.store import StoredDocument
from omniretrieve.text.bm25 import Analyzer, BM25Index


class SparseField:
    def __init__(
        self,
        documents: Callable[[], Mapping[str, StoredDocument]],
        language: Callable[[], str],
        languages: LanguageCache,
    ) -> None:
        self._documents = documents
        self._language = language
        self._languages = languages
        self._index: tuple[BM25Index | None, list[str]] | None = None
        self._mask: tuple[set[str], np.ndarray] | None = None

    def invalidate(self) -> None:
        self._index = None
        self._mask = None

    def index(self) -> tuple[BM25Index | None, list[str]]:
        """BM25 over the documents (None while there are none) and the ids of its rows."""
        if self._index is None:
            documents = self._documents()
            ids = list(documents)
            if not ids:
                self._languages.known = frozenset()
                self._index = (None, [])
                return self._index
            texts = [documents[i].text for i in ids]
            analyzer = Analyzer(self._language())
            languages = None
            if analyzer.language == "auto":
                languages = [self._languages.document(i) for i in ids]
                self._languages.known = frozenset(languages)
            else:
                self._languages.known = frozenset({analyzer.language})
            self._index = (BM25Index(texts, analyzer=analyzer, languages=languages), ids)
        return self._index

    def query_language(self, query: str) -> str:
        """The query's language among the documents' (BM25 is built first to know them)."""
        self.index()
        return self._languages.query(query)

    def search(
        self,
        query: str,
        k: int,
        allowed: set[str] | None,
        language: str | None = None,
        conditions: Mapping[str, Any] | None = None,
    ) -> dict[str, float]:
        """The best ``k`` documents by BM25 (only those ``allowed``, when given) with a
        positive score (``conditions``, the filter ``allowed`` came from, is for stores that
        filter themselves)."""
        index, ids = self.index()
        if index is None:
            return {}
        if index.analyzer.language != "auto":
            language = None
        elif language is None:
            language = self.query_language(query)
        scores = index.scores(query, language)
        if allowed is not None:
            scores = np.where(self._allowed_rows(ids, allowed), scores, -np.inf)
        k = min(k, len(ids))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[scores[best] > 0]  # -inf (filtered out) and no matching term
        return dict(zip([ids[i] for i in best.tolist()], scores[best].tolist(), strict=True))

    def _allowed_rows(self, ids: list[str], allowed: set[str]) -> np.ndarray:
        """Which BM25 rows a filter lets through (kept while the same filter repeats)."""
        cached = self._mask
        if cached is not None and cached[0] is allowed:
            return cached[1]
        mask = np.fromiter((i in allowed for i in ids), dtype=bool, count=len(ids))
        self._mask = (allowed, mask)
        return mask
