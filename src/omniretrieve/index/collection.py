"""Collections: documents in, ranked documents out (dense, BM25, hybrid, rerank), on disk.

A collection is one directory (see :mod:`omniretrieve.index.store` for the crash-safe format).
This facade keeps the public API and delegates each job to its module:

- :mod:`~omniretrieve.index.settings`: settings, defaults, field names;
- :mod:`~omniretrieve.index.ingest`: what an upsert embeds, OCR, passages;
- :mod:`~omniretrieve.index.vectors`: where dense search runs (faiss, Milvus);
- :mod:`~omniretrieve.index.sparse_field` and :mod:`~omniretrieve.index.languages`: BM25;
- :mod:`~omniretrieve.index.search` and :mod:`~omniretrieve.index.pipeline` (its stages): searching
  (the search methods: :mod:`~omniretrieve.index.collection_search`);
- :mod:`~omniretrieve.index.tuning`: the self-tuned fusion (its methods:
  :mod:`~omniretrieve.index.tuning.methods`);
- :mod:`~omniretrieve.index.held_ledger`: what Milvus must hold, where it alone holds the
  documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, nullcontext
from pathlib import Path
from typing import Any

from omniretrieve.embedder import Embedder
from omniretrieve.errors import InputError, OmniRetrieveError
from omniretrieve.index.catalog import collection_names, drop_collection, missing_collection
from omniretrieve.index.collection_documents import CollectionDocuments
from omniretrieve.index.collection_search import CollectionSearching
from omniretrieve.index.documents import check_name
from omniretrieve.index.field_outputs import Fields
from omniretrieve.index.held_ledger import check_held_files, open_ledger, settle_held_wal
from omniretrieve.index.ingest import IMAGE_SPAN, DocumentIngest, IngestOptions, upsert_batches
from omniretrieve.index.languages import DOCUMENT_LANGUAGE_CACHE, LanguageCache
from omniretrieve.index.milvus_documents import HeldState, prefetch
from omniretrieve.index.model_protocols import IndexEmbedder, IndexReranker
from omniretrieve.index.reembed import ReembedReport, drop_unnamed_fields, reembed
from omniretrieve.index.results import SearchHit, UpsertReport
from omniretrieve.index.search import FIRST_STAGE, MODES, Searcher
from omniretrieve.index.settings import (
    CollectionSettings,
    changed_settings,
    default_root,
    field_name,
    read_settings,
    settings_json,
)
from omniretrieve.index.sparse_field import SparseField
from omniretrieve.index.store import CollectionStore, StoredDocument, StoredState, apply
from omniretrieve.index.stored_files import StoredFiles
from omniretrieve.index.tuning.methods import CollectionTuningMethods
from omniretrieve.index.tuning.self_tune import read_tuning, refit_guarded, tuning_due
from omniretrieve.index.vectors import open_vector_store
from omniretrieve.reranker import Reranker
from omniretrieve.runtime.progress import progress_bar

COMPACT_WAL_BYTES = 64 * 1024 * 1024
HELD_LANGUAGE_CACHE = 10_000
"""Documents whose language is remembered when Milvus holds the documents (a cache, not the
corpus)."""


IMAGE_WORK_CHARS = 2000
"""What embedding an image counts for in indexing progress (about a page of text)."""


def work_of(document: StoredDocument) -> int:
    return len(document.text) + (IMAGE_WORK_CHARS if document.image else 0) + 1


class Collection(CollectionDocuments, CollectionSearching, CollectionTuningMethods):
    """One collection, opened by this process for writing (one writer at a time, a lock file
    says who) or read-only (any number of readers, beside a writer)."""

    def __init__(
        self,
        directory: Path,
        settings: CollectionSettings,
        *,
        embedders: Mapping[str, IndexEmbedder] | None = None,
        rerankers: Mapping[str, IndexReranker] | None = None,
        read_only: bool = False,
        repair: bool = False,
    ) -> None:
        self.directory = directory
        self.name = directory.name
        self.settings = settings
        self.read_only = read_only
        self._store = CollectionStore(directory)
        self._embedders: dict[str, IndexEmbedder] = dict(embedders or {})
        self._rerankers: dict[str, IndexReranker] = dict(rerankers or {})
        self.options = IngestOptions()
        """What upserts accept (``image_paths``, ``max_text_chars``) and when they stop
        (``should_stop``): the server and the CLI set these."""
        self.files = StoredFiles(directory)
        """The image files and PDFs the collection's documents were made from."""
        self._ingest = DocumentIngest(
            self.name, lambda: self.settings, self.embedder, self.options, self.files
        )
        with ExitStack() as undo:  # an open that fails, however, releases what it took
            if not read_only:
                self._store.lock()
            undo.callback(self._store.close)
            self._open_parts(settings, read_only, undo, repair)
            undo.pop_all()  # opened: close() releases them from now on

    def _open_parts(
        self, settings: CollectionSettings, read_only: bool, undo: ExitStack, repair: bool
    ) -> None:
        if not repair:
            check_held_files(self.directory, settings)
        models = {field_name(m): m for m in settings.embedders}
        held = settings.storage == "milvus"
        self._languages = LanguageCache(
            lambda: self._state.documents, HELD_LANGUAGE_CACHE if held else DOCUMENT_LANGUAGE_CACHE
        )
        self._vectors = open_vector_store(
            settings,
            self.state,
            lambda field: self.embedder(models[field]).dimension,
            directory=self.directory,
            name=self.name,
            languages=self._languages,
        )
        undo.callback(self._vectors.close)
        self._ledger = open_ledger(
            self._store, self._vectors, repair=repair, writable=not read_only
        )
        if read_only:
            self._version = self._store.version()
            self._state: StoredState = self._store.load_consistent(
                new_state=self._vectors.new_state
            )
        else:
            self._state = self._store.load(self._vectors.new_state)
            if not held:
                drop_unnamed_fields(self._state, settings.embedders)
            self._vectors.sync(self._state)  # repairs a store a crash left behind
            self._settle_wal()
            if not held:  # files a deleted document (or a crash before its record) left
                self.files.sweep(d.image for d in self._state.documents.values())
        self._sparse = self._vectors.bm25() or SparseField(
            lambda: self._state.documents, lambda: self.settings.language, self._languages
        )
        self._searcher = Searcher(self, self._vectors, self._sparse, self._languages)
        self._tuning_stamp = self._store.tuning_stamp()
        self._tuning = read_tuning(self._store)

    # -- lifecycle ------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        name: str,
        *,
        root: Path | None = None,
        settings: CollectionSettings | None = None,
        embedders: Mapping[str, IndexEmbedder] | None = None,
        rerankers: Mapping[str, IndexReranker] | None = None,
    ) -> Collection:
        check_name(name)
        settings = (settings or CollectionSettings()).validate()
        directory = (root or default_root()) / name
        if directory.exists():
            raise InputError(f"collection {name!r} already exists at {directory}", field="name")
        try:
            CollectionStore(directory).create(settings_json(settings))
        except FileExistsError as exc:
            raise InputError(f"collection {name!r} already exists", field="name") from exc
        return cls(directory, settings, embedders=embedders, rerankers=rerankers)

    @classmethod
    def open(
        cls,
        name: str,
        *,
        root: Path | None = None,
        embedders: Mapping[str, IndexEmbedder] | None = None,
        rerankers: Mapping[str, IndexReranker] | None = None,
        read_only: bool = False,
        repair: bool = False,
    ) -> Collection:
        """Open an existing collection; ``read_only`` opens it beside a writer, seeing the
        acknowledged writes as of now (:meth:`refresh` catches up later). ``repair``: where
        Milvus alone holds the documents and holds fewer than the folder records, accept what
        it holds (:mod:`~omniretrieve.index.held_ledger`; refused otherwise)."""
        check_name(name)
        directory = (root or default_root()) / name
        if not directory.is_dir():
            raise missing_collection(name, root)
        settings = read_settings(CollectionStore(directory))
        return cls(
            directory,
            settings,
            embedders=embedders,
            rerankers=rerankers,
            read_only=read_only,
            repair=repair,
        )

    @classmethod
    def open_or_create(cls, name: str, **options: Any) -> Collection:
        """Open ``name``, or create it (with ``settings``) when it does not exist: an existing
        collection keeps its stored settings. Options as :meth:`open` / :meth:`create`."""
        if ((options.get("root") or default_root()) / name / "collection.json").is_file():
            options.pop("settings", None)
            return cls.open(name, **options)
        return cls.create(name, **options)

    def refresh(self) -> bool:
        """Read-only: reload what a writer changed since (acknowledged documents; a new
        self-tuned fusion, read alone); True when anything was (always, where Milvus holds
        the documents: what this reader read from there is read again)."""
        if not self.read_only:
            return False
        stamp = self._store.tuning_stamp()
        retuned = stamp != self._tuning_stamp
        if retuned:
            self._tuning_stamp, self._tuning = stamp, read_tuning(self._store)
        version = self._store.version()
        if version == self._version and not isinstance(self._state, HeldState):
            return retuned
        self._state = self._store.load_consistent(new_state=self._vectors.new_state)
        self._version = version
        self._invalidate()
        return True

    def update_settings(self, **changes: Any) -> CollectionSettings:
        """Change search-time settings (BM25 language, fusion, fusion_weights,
        rerank_candidates, reranker), saved atomically; settings that shape the stored data
        need a new collection."""
        self._check_writable()
        settings = changed_settings(self.settings, changes)
        self._store.write_settings(settings_json(settings))
        self.settings = settings
        self._invalidate()
        return settings

    def _check_writable(self) -> None:
        if self.read_only:
            raise InputError(f"collection {self.name!r} is open read-only", field="name")

    names = staticmethod(collection_names)
    drop = staticmethod(drop_collection)

    def flush(self) -> None:
        """Write a snapshot and empty the write-ahead log (documents held by Milvus: empty
        it once Milvus holds its writes)."""
        self._check_writable()
        if isinstance(self._state, HeldState):
            self._vectors.sync(self._state)
            self._settle_wal()
        else:
            self._store.compact(self._state)

    def _settle_wal(self) -> None:
        settle_held_wal(self._state, self._store, self._ledger)

    @property
    def has_unflushed_writes(self) -> bool:
        """Whether acknowledged writes wait in the WAL (a :meth:`flush` would change files)."""
        return not self.read_only and self._store.wal_bytes() > 0

    def close(self) -> None:
        self._vectors.close()
        self._store.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._state.documents)

    # -- models ---------------------------------------------------------------------------
    def embedder(self, model_id: str) -> IndexEmbedder:
        if model_id not in self._embedders:
            self._embedders[model_id] = Embedder(model_id, dtype=self.options.dtype)
        return self._embedders[model_id]

    def reranker(self, model_id: str) -> IndexReranker:
        if model_id not in self._rerankers:
            shared = next(iter(self._embedders.values()), None)
            self._rerankers[model_id] = Reranker(
                model_id, embedding_model=shared.model if shared is not None else None
            )
        return self._rerankers[model_id]

    # -- reading --------------------------------------------------------------------------
    def state(self) -> StoredState:
        """The documents and passage vectors as stored (read it; never change it)."""
        return self._state

    def document_language(self, doc_id: str) -> str:
        """The language a stored document's text is analysed in (``metadata.lang`` or
        detected from its opening)."""
        return self._languages.document(doc_id)

    def passage_fields(self, model_id: str, documents: Sequence[StoredDocument]) -> Fields:
        """Documents split and embedded as an upsert would (nothing is stored): per field
        of the model, per document, its rows' spans and its rows."""
        return self._ingest.passage_fields(model_id, documents)[0]

    def query_language(self, query: str) -> str:
        """The query's language, chosen among the languages of the collection's documents."""
        return self._sparse.query_language(query)

    # -- writing --------------------------------------------------------------------------
    def upsert(
        self,
        documents: Iterable[Any],
        *,
        show_progress: bool = False,
        batch_guard: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> UpsertReport:
        """Add or replace documents (``{"id", "text", "metadata", "image"}``); each batch (256
        documents or 200k characters at most) is acknowledged (durable) before the next is
        embedded. Every document is checked before any work, so a bad one changes nothing.

        ``batch_guard`` (a server's lock) is held only while a batch is classified and while
        it is acknowledged, not while it is embedded, so reads go on meanwhile; a batch whose
        documents changed in between is classified and embedded again under the guard."""
        self._check_writable()
        items = self.check_documents(documents)
        guard = batch_guard or nullcontext
        totals = [0, 0, 0, 0]
        work = sum(map(work_of, items))  # characters: the embedders' work, not documents
        with progress_bar(
            work, f"indexing {self.name}", enabled=show_progress, unit="chars"
        ) as advance:
            for batch in upsert_batches(items):
                counts = self._ingest.upsert_batch(self.state, batch, guard, self._acknowledge)
                totals = [a + b for a, b in zip(totals, counts, strict=True)]
                advance(sum(map(work_of, batch)))
        with guard():
            if self._store.wal_bytes() > COMPACT_WAL_BYTES:
                self.flush()
        if self.options.auto_tune and tuning_due(self.settings, self._tuning, len(self)):
            if self.options.schedule_tuning is not None:
                self.options.schedule_tuning()  # the server's queue fits it, off this request
            else:
                refit_guarded(self, guard, show_progress=show_progress)
        return UpsertReport(*totals)

    def check_documents(self, documents: Iterable[Any]) -> list[StoredDocument]:
        """Documents parsed and checked as :meth:`upsert` takes them; nothing is stored."""
        return self._ingest.check(documents)

    def _acknowledge(self, record: dict[str, Any]) -> None:
        """Make an upsert record durable (the WAL's fsync), then live."""
        self._store.append(record)
        ids = [e["document"]["id"] for e in record["documents"]]
        prefetch(self._state.documents, ids)
        new = frozenset(d for d in ids if d not in self._state.documents)
        if self._ledger is not None:
            self._ledger.wrote(record, len(new))
        apply(self._state, record)
        self._invalidate()
        self._vectors.upsert(self._state, ids, new)
        self._settle_wal()

    def delete(self, ids: Iterable[str]) -> int:
        """Delete documents by id; returns how many existed."""
        self._check_writable()
        ids = list(dict.fromkeys(ids))
        prefetch(self._state.documents, ids)
        present = [doc_id for doc_id in ids if doc_id in self._state.documents]
        if present:
            record = {"op": "delete", "ids": present}
            self._store.append(record)
            if self._ledger is not None:
                self._ledger.wrote(record, -len(present))
            apply(self._state, record)
            self._invalidate()
            self._vectors.delete(present, self._state)
            self._settle_wal()
        return len(present)

    def reembed(
        self, embedder: str, *, replacing: str | None = None, show_progress: bool = False
    ) -> ReembedReport:
        """Move the collection to ``embedder`` in place of ``replacing`` (the only embedder
        by default): new vectors built beside the old, switched atomically, the old dropped
        (:mod:`~omniretrieve.index.reembed`). The collection is closed afterwards: open it
        again to use it."""
        return reembed(self, embedder, replacing=replacing, show_progress=show_progress)

    def _invalidate(self) -> None:
        self._sparse.invalidate()
        self._languages.clear()
        self._searcher.invalidate()
        self._vectors.invalidate()


__all__ = ["FIRST_STAGE", "IMAGE_SPAN", "MODES", "Collection", "CollectionSettings"]
__all__ += ["OmniRetrieveError", "SearchHit", "UpsertReport", "field_name"]
