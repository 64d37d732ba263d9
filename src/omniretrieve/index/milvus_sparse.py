"""BM25 served by Milvus (``sparse="milvus"``): the same analysis as the in-process BM25
(:class:`~omniretrieve.text.analyzers.Analyzer`: each document in its language, stemming and
stop words), with Milvus holding the index and scoring it (its ``BM25`` function and a
``SPARSE_INVERTED_INDEX``), so our process keeps no BM25 index.

Milvus Lite's analyzers split and lower-case text (``standard``, ``jieba``) but do not stem
(a ``stemmer`` filter is accepted and ignored), so Milvus is given our analysed tokens, joined
by spaces: a token of ASCII letters and digits as it is, any other as ``x_`` and its UTF-8
bytes in hex (a token ``standard`` keeps whole), which keeps every language's analysis exactly
ours. Milvus computes the statistics (document frequencies, lengths) and the score with our
``k1`` and ``b``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from omniretrieve.index.languages import LanguageCache
from omniretrieve.index.milvus_store import BM25_FIELD, MAX_TEXT_BYTES, MilvusVectors, row_version
from omniretrieve.index.store import StoredDocument, StoredState
from omniretrieve.text.analyzers import Analyzer
from omniretrieve.text.bm25 import DEFAULT_B, DEFAULT_K1

PLAIN = re.compile(r"[a-z0-9]+")
PUSH_BATCH = 2_000


def encode_token(token: str) -> str:
    """A token Milvus's ``standard`` tokenizer keeps whole and cannot confuse with another."""
    return token if PLAIN.fullmatch(token) else "x_" + token.encode("utf-8").hex()


def analysed_text(tokens: Sequence[str]) -> str:
    """The tokens as Milvus reads them (cut at Milvus's text limit, on a token boundary)."""
    text = " ".join(encode_token(t) for t in tokens)
    if len(text) > MAX_TEXT_BYTES:  # the encoding is ASCII: one byte a character
        text = text[: text.rfind(" ", 0, MAX_TEXT_BYTES + 1)].rstrip()
    return text


class MilvusSparse:
    """BM25 rows of one collection in Milvus, kept equal to the collection's documents."""

    def __init__(
        self,
        milvus: MilvusVectors,
        documents: Callable[[], Mapping[str, StoredDocument]],
        language: Callable[[], str],
        languages: LanguageCache,
        known_languages: Callable[[], frozenset[str]] | None = None,
    ) -> None:
        """``known_languages``: the documents' languages where reading every document to
        learn them is not an option (documents held by Milvus alone)."""
        self._milvus = milvus
        self._known_languages = known_languages
        self._documents = documents
        self._language = language
        self._languages = languages
        self._known: bool = False

    def _analyzer(self) -> Analyzer:
        return Analyzer(self._language())

    def _texts(self, doc_ids: Sequence[str]) -> list[str]:
        documents = self._documents()
        analyzer = self._analyzer()
        languages = (
            [self._languages.document(d) for d in doc_ids] if analyzer.language == "auto" else None
        )
        tokens = analyzer.tokenize([documents[d].text for d in doc_ids], languages)
        return [analysed_text(t) for t in tokens]

    # -- writes (after the WAL acknowledged them) ----------------------------------------------
    def upsert(self, state: StoredState, doc_ids: Sequence[str]) -> None:
        for start in range(0, len(doc_ids), PUSH_BATCH):
            chunk = [d for d in doc_ids[start : start + PUSH_BATCH] if d in state.documents]
            rows = [
                (
                    d,
                    row_version(state.documents[d].content_hash, state.documents[d].metadata),
                    state.documents[d].metadata,
                    text,
                )
                for d, text in zip(chunk, self._texts(chunk), strict=True)
            ]
            self._milvus.upsert_texts(rows, DEFAULT_K1, DEFAULT_B)
        self._known = False

    def delete(self, doc_ids: Sequence[str]) -> None:
        self._milvus.delete(list(doc_ids), [BM25_FIELD])
        self._known = False

    def sync(self, state: StoredState) -> None:
        """Make Milvus hold exactly the directory's documents (after a crash between a WAL
        acknowledgement and its push); a document with no text to match has no row."""
        local = {  # a document without text (an image alone) must have no row
            d: row_version(doc.content_hash, doc.metadata)
            for d, doc in state.documents.items()
            if doc.text.strip()
        }
        stale, missing = self._milvus.differences(BM25_FIELD, local)
        if stale:
            self.delete(stale)
        self.upsert(state, missing)

    # -- what search asks of BM25 (as SparseField) ----------------------------------------------
    def invalidate(self) -> None:
        self._known = False

    def query_language(self, query: str) -> str:
        """The query's language among the documents' (known without building an index)."""
        if not self._known:
            language = self._analyzer().language
            if language != "auto":
                self._languages.known = frozenset({language})
            elif self._known_languages is not None:
                self._languages.known = self._known_languages()
            else:
                documents = self._documents()
                self._languages.known = frozenset(self._languages.document(d) for d in documents)
            self._known = True
        return self._languages.query(query)

    def search(
        self,
        query: str,
        k: int,
        allowed: set[str] | None,
        language: str | None = None,
        conditions: Mapping[str, Any] | None = None,
    ) -> dict[str, float]:
        """The best ``k`` documents by BM25 in Milvus, the filter run as a Milvus expression."""
        analyzer = self._analyzer()
        if analyzer.language == "auto" and language is None:
            language = self.query_language(query)
        tokens = analyzer.tokenize([query], [language if analyzer.language == "auto" else None])
        text = analysed_text(tokens[0])
        if not text:
            return {}
        (hits,) = self._milvus.search_texts([text], k, conditions, DEFAULT_K1, DEFAULT_B)
        return {d: s for d, s in hits if s > 0 and (allowed is None or d in allowed)}
