"""Where a collection's dense search runs: one :class:`VectorStore` per collection, chosen by
name from :data:`VECTOR_STORES` (``CollectionSettings.vector_store``).

A store answers, per query, each document's aggregated passage score (max or sum) for one
vector field. The collection's folder is the source of truth for every store: documents and
passage vectors live in its snapshot and WAL; a store holds a copy (faiss: in memory, rebuilt
after writes; Milvus: a remote or Milvus Lite collection, synchronised on open and pushed to
after each acknowledged batch).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from omniretrieve.index.dense import DenseConfig, DenseIndex
from omniretrieve.index.languages import LanguageCache
from omniretrieve.index.late_interaction import Codes
from omniretrieve.index.milvus_documents import DOCUMENTS_FIELD, HeldState, MilvusDocumentRows
from omniretrieve.index.milvus_sparse import MilvusSparse
from omniretrieve.index.milvus_store import BM25_FIELD, MilvusVectors, row_version
from omniretrieve.index.passage_scores import aggregate, aggregate_rows
from omniretrieve.index.settings import VECTOR_STORE_NAMES, CollectionSettings, field_name
from omniretrieve.index.store import StoredState
from omniretrieve.index.token_search import TokenIndexes
from omniretrieve.multi_vector import SparseEmbedding

SYNC_BATCH = 256
CANDIDATE_TOKENS = 64
"""Milvus's nearest token rows per query vector whose documents a MaxSim search rescores."""


class VectorStore(Protocol):
    def sync(self, state: StoredState) -> None:
        """Make the store hold exactly ``state``'s vectors (on opening for writing)."""

    def upsert(
        self, state: StoredState, doc_ids: Sequence[str], new: Container[str] = frozenset()
    ) -> None:
        """These documents were acknowledged with new vectors (or metadata); those in ``new``
        were not in the collection before."""

    def delete(self, doc_ids: Sequence[str], state: StoredState | None = None) -> None:
        """These documents were deleted (``state``: the collection's, after the delete)."""

    def invalidate(self) -> None:
        """The state changed (writes, a refresh): drop what was derived from it."""

    def search(
        self,
        field: str,
        query_vectors: np.ndarray,
        k: int,
        allowed: set[str] | None,
        conditions: Mapping[str, Any] | None,
    ) -> list[dict[str, float]]:
        """Per query: document id -> aggregated passage score, the best ``k`` documents."""

    def search_sparse(
        self,
        field: str,
        queries: Sequence[SparseEmbedding],
        k: int,
        allowed: set[str] | None,
    ) -> list[dict[str, float]]:
        """Per query (learned token weights): document id -> lexical matching score."""

    def search_multivector(
        self,
        field: str,
        queries: Sequence[np.ndarray],
        k: int,
        allowed: set[str] | None,
        conditions: Mapping[str, Any] | None,
        reduce: str,
    ) -> list[dict[str, float]]:
        """Per query (its token vectors): document id -> MaxSim, the best ``k``."""

    def close(self) -> None: ...

    def new_state(self) -> StoredState:
        """An empty state for the collection to load into (Milvus-held documents:
        a :class:`~omniretrieve.index.milvus_documents.HeldState`)."""
        ...

    @property
    def filters_itself(self) -> bool:
        """Whether every search stage runs filters as the store's own expressions (then
        no set of allowed documents is computed from the documents)."""
        ...

    def bm25(self) -> Any:
        """The store's own BM25 (``sparse="milvus"``: a
        :class:`~omniretrieve.index.milvus_sparse.MilvusSparse`), or None: BM25 runs here."""
        ...


class LocalTokenSearch:
    """Learned-sparse and multi-vector search over the folder's rows, in this process
    (:class:`~omniretrieve.index.token_search.TokenIndexes`); a store sets ``_tokens``."""

    _tokens: TokenIndexes

    def search_sparse(
        self,
        field: str,
        queries: Sequence[SparseEmbedding],
        k: int,
        allowed: set[str] | None,
    ) -> list[dict[str, float]]:
        return self._tokens.search_sparse(field, queries, k, allowed)

    def search_multivector(
        self,
        field: str,
        queries: Sequence[np.ndarray],
        k: int,
        allowed: set[str] | None,
        conditions: Mapping[str, Any] | None,
        reduce: str,
    ) -> list[dict[str, float]]:
        return self._tokens.search_multivector(field, queries, k, allowed, reduce)


class FaissStore(LocalTokenSearch):
    """Exact or HNSW faiss indexes in this process, one per vector field, built lazily from
    the state and dropped on every write."""

    def __init__(
        self,
        settings: CollectionSettings,
        state: Callable[[], StoredState],
        dimension: Callable[[str], int],
        *,
        directory: Path,
        name: str,
        languages: LanguageCache | None = None,
    ) -> None:
        """``directory``, ``name`` and ``languages`` are unused: the indexes live in memory
        only, and BM25 runs in the collection."""
        self._settings = settings
        self._state = state
        self._dimension = dimension
        self._indexes: dict[str, tuple[DenseIndex, np.ndarray, list[str]]] = {}
        codes: Codes = "float32" if settings.quantization == "float" else "int8"
        self._tokens = TokenIndexes(state, lambda: self._settings.aggregate, codes)

    def sync(self, state: StoredState) -> None:
        self.invalidate()

    def upsert(
        self, state: StoredState, doc_ids: Sequence[str], new: Container[str] = frozenset()
    ) -> None:
        self.invalidate()

    def delete(self, doc_ids: Sequence[str], state: StoredState | None = None) -> None:
        self.invalidate()

    def invalidate(self) -> None:
        self._indexes.clear()
        self._tokens.invalidate()

    def close(self) -> None:
        self.invalidate()

    def bm25(self) -> None:
        return None

    def new_state(self) -> StoredState:
        return StoredState()

    @property
    def filters_itself(self) -> bool:
        return False

    @staticmethod
    def drop_remote(settings: CollectionSettings, name: str) -> None:
        """Nothing outside the collection's folder."""

    def index(self, field: str) -> tuple[DenseIndex, np.ndarray, list[str]]:
        """The faiss index of a vector field, per row the position of the passage's document,
        and the document ids those positions index."""
        if field not in self._indexes:
            per_doc = self._state().passages.get(field, {})
            doc_ids: list[str] = []
            counts: list[int] = []
            blocks: list[np.ndarray] = []
            for doc_id, (_, vectors) in per_doc.items():
                doc_ids.append(doc_id)
                counts.append(len(vectors))
                blocks.append(vectors)
            if blocks:
                matrix = np.concatenate(blocks)
            else:
                matrix = np.zeros((0, self._dimension(field)), np.float32)
            owners = np.repeat(np.arange(len(doc_ids), dtype=np.int64), counts)
            config = DenseConfig(
                quantization=self._settings.quantization,  # type: ignore[arg-type]
                hnsw_threshold=self._settings.hnsw_threshold,
            )
            self._indexes[field] = (DenseIndex(matrix, config), owners, doc_ids)
        return self._indexes[field]

    def search(
        self,
        field: str,
        query_vectors: np.ndarray,
        k: int,
        allowed: set[str] | None,
        conditions: Mapping[str, Any] | None,
    ) -> list[dict[str, float]]:
        index, owners, doc_ids = self.index(field)
        if index.size == 0:
            return [{} for _ in query_vectors]
        rows = None
        if allowed is not None:
            permitted = np.fromiter((d in allowed for d in doc_ids), dtype=bool, count=len(doc_ids))
            rows = np.flatnonzero(permitted[owners])
            if rows.size == 0:
                return [{} for _ in query_vectors]
        # passages, then documents: fetch extra passages so k documents survive aggregation
        scores, found = index.search(query_vectors, k * 3, allowed=rows)
        how = self._settings.aggregate
        runs = []
        for row_scores, row_ids in zip(scores, found, strict=True):
            valid = row_ids >= 0
            runs.append(aggregate_rows(owners[row_ids[valid]], row_scores[valid], doc_ids, k, how))
        return runs


class MilvusStore(LocalTokenSearch):
    """Dense search in Milvus (Lite in the collection's folder, or a server/cluster): see
    :mod:`omniretrieve.index.milvus_store`. Filters become Milvus expressions."""

    def __init__(
        self,
        settings: CollectionSettings,
        state: Callable[[], StoredState],
        dimension: Callable[[str], int],
        *,
        directory: Path,
        name: str,
        languages: LanguageCache | None = None,
    ) -> None:

        self._settings = settings
        self._fields = [field_name(m) for m in settings.embedders]
        self._pushed = [*self._fields, *(field_name(m, "multivector") for m in settings.embedders)]
        """Fields with rows in Milvus: dense vectors, and token vectors (candidates for
        MaxSim; learned-sparse fields are searched here, from the folder's rows)."""
        self._tokens = TokenIndexes(state, lambda: self._settings.aggregate)
        uri = settings.milvus_uri or str(directory / "milvus.db")
        self._milvus: Any = MilvusVectors(uri, name)
        self._languages = languages or LanguageCache(lambda: state().documents)
        self._held = settings.storage == "milvus"
        self._known_languages: set[str] | None = None
        self._bm25: MilvusSparse | None = None
        if settings.sparse == "milvus":
            self._bm25 = MilvusSparse(
                self._milvus,
                lambda: state().documents,
                lambda: self._settings.language,
                self._languages,
                known_languages=self._held_languages if self._held else None,
            )

    def new_state(self) -> StoredState:
        return HeldState(self._milvus, self._fields) if self._held else StoredState()

    @property
    def filters_itself(self) -> bool:
        return self._bm25 is not None

    def _held_languages(self) -> frozenset[str]:
        """The languages of the documents Milvus holds (read once, then kept up to date by
        this writer's pushes; a deleted language stays until the collection is reopened)."""
        if self._known_languages is None:
            self._known_languages = set(MilvusDocumentRows(self._milvus).scan("lang"))
        return frozenset(self._known_languages)

    @staticmethod
    def drop_remote(settings: CollectionSettings, name: str) -> None:
        """Drop the collection's Milvus collections on a server (Lite files go with the
        folder)."""
        if not settings.milvus_uri:
            return

        remote = MilvusVectors(settings.milvus_uri, name)
        fields = [field_name(m, o) for m in settings.embedders for o in ("dense", "multivector")]
        remote.drop([*fields, BM25_FIELD, DOCUMENTS_FIELD])
        remote.close()

    def upsert(
        self,
        state: StoredState,
        doc_ids: Sequence[str],
        new: Container[str] = frozenset(),
        fields: Sequence[str] | None = None,
    ) -> None:
        """Copy these documents' stored vectors (and, with ``sparse="milvus"``, their
        analysed text) to Milvus (after the WAL acknowledged them); Milvus holds no rows of
        those in ``new``."""
        if not doc_ids:
            return
        if self._bm25 is not None and fields is None:
            self._bm25.upsert(state, doc_ids)
        if self._held and fields is None:
            self._push_documents(state, doc_ids, new)
            return

        self._push_vectors(state, doc_ids, new, fields or self._pushed)

    def _push_vectors(
        self,
        state: StoredState,
        doc_ids: Sequence[str],
        new: Container[str],
        fields: Sequence[str],
    ) -> None:
        for field in fields:
            per_doc = state.passages.get(field, {})
            rows = []
            dimension = 0
            for doc_id in doc_ids:
                if doc_id not in per_doc:
                    continue
                document = state.documents[doc_id]
                vectors = per_doc[doc_id][1]
                dimension = vectors.shape[1]
                version = row_version(document.content_hash, document.metadata)
                rows.append((doc_id, version, document.metadata, vectors))
            if rows:
                self._milvus.upsert(field, dimension, rows, new)

    def _push_documents(
        self, state: StoredState, doc_ids: Sequence[str], new: Container[str]
    ) -> None:
        """Milvus-held documents: their vectors, then their documents' rows (read from
        there from now on); the writes settle."""
        assert isinstance(state, HeldState)
        self._push_vectors(state, doc_ids, new, self._fields)
        present = [d for d in doc_ids if d in state.documents]
        rows = []
        for doc_id in present:
            language = self._languages.document(doc_id)
            spans = state.held_documents.pending_spans.get(doc_id, {})
            rows.append((state.documents[doc_id], language, spans))
            if self._known_languages is not None:
                self._known_languages.add(language)
        state.held_documents.rows.write(rows, [d for d in present if d in new])
        state.settle(doc_ids)

    def sync(self, state: StoredState) -> None:
        """Make Milvus hold exactly the directory's vectors (after a crash between a WAL
        acknowledgement and its Milvus push, or after Milvus lost data). Milvus-held
        documents: push the writes the WAL holds (Milvus holds the rest)."""
        if isinstance(state, HeldState):
            upserted, deleted = state.unsettled()
            self.delete(deleted, state)
            for start in range(0, len(upserted), SYNC_BATCH):
                self.upsert(state, upserted[start : start + SYNC_BATCH])
            return
        if self._bm25 is not None:
            self._bm25.sync(state)

        for field in self._pushed:
            local = {
                doc_id: row_version(
                    state.documents[doc_id].content_hash, state.documents[doc_id].metadata
                )
                for doc_id in state.passages.get(field, {})
            }
            stale, missing = self._milvus.differences(field, local)
            if stale:
                self._milvus.delete(stale, [field])
            for start in range(0, len(missing), SYNC_BATCH):
                self.upsert(state, missing[start : start + SYNC_BATCH], fields=(field,))

    def delete(self, doc_ids: Sequence[str], state: StoredState | None = None) -> None:
        if doc_ids:
            self._milvus.delete(list(doc_ids), self._pushed)
            if self._bm25 is not None:
                self._bm25.delete(doc_ids)
            if isinstance(state, HeldState):
                state.held_documents.rows.delete(list(doc_ids))
                state.settle(doc_ids)

    def invalidate(self) -> None:
        """Milvus holds its own copy, updated by upsert and delete; the learned-sparse
        indexes built here are dropped."""
        self._tokens.invalidate()

    def search_multivector(
        self,
        field: str,
        queries: Sequence[np.ndarray],
        k: int,
        allowed: set[str] | None,
        conditions: Mapping[str, Any] | None,
        reduce: str,
    ) -> list[dict[str, float]]:
        """Candidates from Milvus (the documents of each query vector's nearest token rows),
        rescored exactly by MaxSim from the stored rows."""
        runs: list[dict[str, float]] = []
        for query in queries:
            if not len(query):
                runs.append({})
                continue
            found = self._milvus.search(field, query, CANDIDATE_TOKENS, conditions)
            candidates = dict.fromkeys(doc_id for hits in found for doc_id, _ in hits)
            if allowed is not None:
                candidates = {d: None for d in candidates if d in allowed}
            runs.append(self._tokens.rescore(field, query, candidates, k, reduce))
        return runs

    def search(
        self,
        field: str,
        query_vectors: np.ndarray,
        k: int,
        allowed: set[str] | None,
        conditions: Mapping[str, Any] | None,
    ) -> list[dict[str, float]]:
        found = self._milvus.search(field, query_vectors, k * 3, conditions)
        return [aggregate(hits, k, self._settings.aggregate) for hits in found]

    def bm25(self) -> MilvusSparse | None:
        return self._bm25

    def close(self) -> None:
        self._milvus.close()


VECTOR_STORES: dict[str, Any] = {"faiss": FaissStore, "milvus": MilvusStore}
assert tuple(VECTOR_STORES) == VECTOR_STORE_NAMES  # settings validates against the names
"""Store name -> class; each takes (settings, state, dimension) and the keyword arguments
``directory`` and ``name`` (used by the stores that keep files outside the process)."""


def drop_vector_store(settings: CollectionSettings, name: str) -> None:
    """Remove what a collection's store keeps outside its folder (the folder goes anyway)."""
    VECTOR_STORES[settings.vector_store].drop_remote(settings, name)


def open_vector_store(
    settings: CollectionSettings,
    state: Callable[[], StoredState],
    dimension: Callable[[str], int],
    *,
    directory: Path,
    name: str,
    languages: LanguageCache | None = None,
) -> VectorStore:
    store_class = VECTOR_STORES[settings.vector_store]
    store: VectorStore = store_class(
        settings, state, dimension, directory=directory, name=name, languages=languages
    )
    return store
