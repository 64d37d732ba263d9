"""The languages a collection's texts are analysed in: each document's (its ``metadata.lang``,
else detected from its opening), each query's (detected among the documents' languages),
remembered until the documents change."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from omniretrieve.index.store import StoredDocument
from omniretrieve.text.language import detect, detect_or, normalise

QUERY_LANGUAGE_CACHE = 100_000
DOCUMENT_LANGUAGE_CACHE = 1_000_000


class LanguageCache:
    def __init__(
        self,
        documents: Callable[[], Mapping[str, StoredDocument]],
        capacity: int = DOCUMENT_LANGUAGE_CACHE,
    ) -> None:
        """``capacity``: how many documents' languages are remembered (then forgotten
        together)."""
        self._documents = documents
        self._capacity = capacity
        self.known: frozenset[str] = frozenset()
        """The documents' languages (set when BM25 is built over them); queries are
        detected among these."""
        self._queries: dict[str, str] = {}
        self._by_document: dict[str, str] = {}

    def copy_over(self, documents: Mapping[str, StoredDocument]) -> LanguageCache:
        """A cache of its own over ``documents`` (a snapshot of this cache's), starting from
        the document languages this one already knows (take it where writes cannot run)."""
        copy = LanguageCache(lambda: documents, self._capacity)
        copy._by_document = dict(self._by_document)
        return copy

    def clear(self) -> None:
        self._queries = {}
        self._by_document = {}

    def document(self, doc_id: str) -> str:
        """The language a document's text is analysed in."""
        known = self._by_document.get(doc_id)
        if known is None:
            if len(self._by_document) >= self._capacity:
                self._by_document.clear()
            known = self._by_document[doc_id] = self._detect_document(doc_id)
        return known

    def _detect_document(self, doc_id: str) -> str:
        document = self._documents()[doc_id]
        given = document.metadata.get("lang")
        if isinstance(given, str) and 2 <= len(given) <= 3:
            return normalise(given)
        # the opening is enough (and 3x faster); unsure (code, tables): English analysis
        return detect_or(document.text[:500], "en")

    def query(self, query: str) -> str:
        """The query's language, chosen among :attr:`known` (any language when empty)."""
        known = self._queries.get(query)
        if known is None:
            known = detect(query, among=self.known or None)
            if len(self._queries) >= QUERY_LANGUAGE_CACHE:
                self._queries.clear()
            self._queries[query] = known
        return known
