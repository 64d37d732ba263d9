"""Collections: documents in, ranked documents out (dense, BM25, hybrid, rerank), on disk.

A collection is one directory (see :mod:`omniretrieve.index.store` for the crash-safe format).
Documents are split into passages that fit each embedder; a document's dense score is the max
(or sum) of its passages'. BM25 runs over whole documents. Hybrid fuses the two by z-score (the
default) or reciprocal rank; an optional rerank re-orders the first stage's top candidates.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from omniretrieve.checks import MAX_TEXT_CHARS, check_text
from omniretrieve.errors import (
    CollectionNotFoundError,
    InputError,
    OmniRetrieveError,
    ShuttingDownError,
)
from omniretrieve.index.code_units import definition_starts, language_of
from omniretrieve.index.dense import QUANTIZATIONS, DenseConfig, DenseIndex
from omniretrieve.index.documents import check_name, parse_document
from omniretrieve.index.fusion import rrf_fusion, top, zscore_fusion
from omniretrieve.index.passages import passage_spans
from omniretrieve.index.sparse import Analyzer, BM25Index
from omniretrieve.index.store import (
    CollectionFormatError,
    CollectionStore,
    StoredDocument,
    StoredState,
    apply,
    encode_vectors,
)
from omniretrieve.runtime.progress import progress_bar
from omniretrieve.text.analyzers import is_known_language

Mode = Literal["dense", "sparse", "hybrid"]
MODES: tuple[str, ...] = ("dense", "sparse", "hybrid")

COMPACT_WAL_BYTES = 64 * 1024 * 1024
UPSERT_BATCH = 256
UPSERT_BATCH_CHARS = 200_000
"""A batch also ends past this many characters: each acknowledgement (and each time a server
holds the collection's lock) covers a bounded amount of embedding work."""
QUERY_LANGUAGE_CACHE = 100_000
IMAGE_SPAN = (-1, -1)
"""The span of a passage that is the document's image (embedded by a model that reads images)."""
FIRST_STAGE = 100
"""Candidates each first-stage list contributes to hybrid fusion."""
EMBED_CHUNK = 64
"""Passages embedded between two checks of :attr:`Collection.should_stop`."""


def default_root() -> Path:
    override = os.environ.get("OMNIRETRIEVE_DATA")
    if override:
        return Path(override) / "collections"
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "omniretrieve" / "collections"


@dataclass(frozen=True)
class CollectionSettings:
    embedders: tuple[str, ...] = ("all-MiniLM-L6-v2",)
    quantization: str = "float"
    language: str = "auto"
    """BM25 analysis: ``auto`` (each document in its language: ``metadata.lang`` or detected;
    each query in its detected language) or one language for all (``en``, ``german``...)."""
    passage_overlap: int = 32
    passages: Literal["split", "first"] = "split"
    """``split``: long documents become overlapping passages that each fit the embedder;
    ``first``: one vector per document, the model truncating it (as sentence-transformers)."""
    aggregate: Literal["max", "sum"] = "max"
    fusion: Literal["zscore", "rrf"] = "zscore"
    fusion_weights: tuple[float, ...] | None = None
    """BM25's weight first, then one per embedder; equal weights when None."""
    hnsw_threshold: int = 50_000
    rerank_candidates: int = 100
    reranker: str = "omniretrieve-hybrid-reranker"
    vector_store: Literal["faiss", "milvus"] = "faiss"
    """Where dense search runs: faiss in this process, or Milvus (Lite file or a cluster)."""
    milvus_uri: str | None = None
    """Milvus address (``http://host:19530``); None: Milvus Lite in the collection's folder."""
    ocr_images: bool = True
    """Documents with an image get the image's OCR text indexed too (text embedders)."""
    ocr_engine: str = "tesseract"

    def validate(self) -> CollectionSettings:
        self._check_types()
        if self.vector_store not in ("faiss", "milvus"):
            raise InputError("vector_store must be faiss or milvus", field="vector_store")
        if self.quantization not in QUANTIZATIONS:
            raise InputError(
                f"quantization must be one of {', '.join(QUANTIZATIONS)}", field="quantization"
            )
        if self.passages not in ("split", "first"):
            raise InputError("passages must be split or first", field="passages")
        if self.aggregate not in ("max", "sum"):
            raise InputError("aggregate must be max or sum", field="aggregate")
        if self.fusion not in ("zscore", "rrf"):
            raise InputError("fusion must be zscore or rrf", field="fusion")
        if (
            isinstance(self.rerank_candidates, bool)
            or not isinstance(self.rerank_candidates, int)
            or self.rerank_candidates < 1
        ):
            raise InputError(
                "rerank_candidates must be a positive integer", field="rerank_candidates"
            )
        if self.fusion_weights is not None and any(w < 0 for w in self.fusion_weights):
            raise InputError("fusion_weights must not be negative", field="fusion_weights")
        if self.fusion_weights is not None and len(self.fusion_weights) != 1 + len(self.embedders):
            raise InputError(
                "fusion_weights needs one weight for BM25 and one per embedder",
                field="fusion_weights",
            )
        return self

    def _check_types(self) -> None:
        def wrong(name: str, expected: str) -> InputError:
            return InputError(f"{name} must be {expected}", field=name)

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if not isinstance(self.embedders, tuple) or not all(
            isinstance(e, str) and e for e in self.embedders
        ):
            raise wrong("embedders", "a list of model ids (empty: BM25 only)")
        for name in ("quantization", "language", "passages", "aggregate", "fusion", "reranker",
                     "vector_store", "ocr_engine"):  # fmt: skip
            if not isinstance(getattr(self, name), str):
                raise wrong(name, "a string")
        if not is_known_language(self.language) and self.language != "auto":
            raise InputError(
                f"language {self.language!r} is not a language code or name this package "
                "knows (e.g. auto, en, english, de, zh)",
                field="language",
            )
        if not is_int(self.passage_overlap) or self.passage_overlap < 0:
            raise wrong("passage_overlap", "a non-negative integer")
        if not is_int(self.hnsw_threshold) or self.hnsw_threshold < 1:
            raise wrong("hnsw_threshold", "a positive integer")
        if self.fusion_weights is not None and (
            not isinstance(self.fusion_weights, tuple)
            or not all(
                isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w)
                for w in self.fusion_weights
            )
        ):
            raise wrong("fusion_weights", "a list of numbers")
        if self.milvus_uri is not None and not isinstance(self.milvus_uri, str):
            raise wrong("milvus_uri", "a string")
        if not isinstance(self.ocr_images, bool):
            raise wrong("ocr_images", "true or false")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CollectionSettings:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("embedders", "fusion_weights"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True)
class SearchHit:
    doc_id: str
    score: float
    text: str
    metadata: dict[str, Any]
    scores: dict[str, float] = field(default_factory=dict)
    """Per stage: sparse, dense:<model>, fused, rerank."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FirstStage:
    """One query's lists before fusion (see :meth:`Collection.first_stage_runs`)."""

    runs: dict[str, dict[str, float]]
    """``sparse`` and ``dense:<model>``: document id -> score."""
    fields: tuple[str, ...]
    """The vector fields this query used (routing may leave some out)."""


@dataclass(frozen=True)
class _SearchPlan:
    mode: str
    fields: tuple[str, ...]
    routing: bool
    allowed: set[str] | None
    filter: Mapping[str, Any] | None
    filter_key: str | None
    depth: int


@dataclass(frozen=True)
class _BatchPlan:
    entries: list[dict[str, Any]]
    """WAL entries that need no embedding (metadata-only updates)."""
    to_embed: list[StoredDocument]
    counts: tuple[int, int, int]
    """Added, updated, unchanged."""
    versions: tuple[int, ...]
    """:meth:`Collection._stored_versions` when the batch was classified."""


def upsert_batches(items: Sequence[StoredDocument]) -> Iterator[list[StoredDocument]]:
    """Consecutive batches of at most :data:`UPSERT_BATCH` documents and, past their first
    document, :data:`UPSERT_BATCH_CHARS` characters."""
    batch: list[StoredDocument] = []
    size = 0
    for item in items:
        if batch and (len(batch) >= UPSERT_BATCH or size + len(item.text) > UPSERT_BATCH_CHARS):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += len(item.text)
    if batch:
        yield batch


@dataclass(frozen=True)
class UpsertReport:
    added: int
    updated: int
    unchanged: int
    embedded_passages: int


def read_settings(store: CollectionStore) -> CollectionSettings:
    """A collection's settings, checked: wrong values are a :class:`CollectionFormatError`
    naming ``collection.json`` (nothing is changed)."""
    raw = store.read_settings()
    try:
        return CollectionSettings.from_json(raw).validate()
    except (InputError, TypeError, ValueError) as exc:
        message = exc.message if isinstance(exc, InputError) else str(exc)
        raise CollectionFormatError(
            f"{store.settings_path} holds a wrong value ({message}); the collection was not "
            "opened or modified (correct the file)"
        ) from exc


def settings_json(settings: CollectionSettings) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()}


def field_name(model_id: str) -> str:
    return "dense-" + re.sub(r"[^A-Za-z0-9._-]+", "--", model_id)


class Collection:
    """One collection, opened by this process for writing (one writer at a time, a lock file
    says who) or read-only (any number of readers, beside a writer)."""

    def __init__(
        self,
        directory: Path,
        settings: CollectionSettings,
        *,
        embedders: Mapping[str, Any] | None = None,
        rerankers: Mapping[str, Any] | None = None,
        read_only: bool = False,
    ) -> None:
        self.directory = directory
        self.name = directory.name
        self.settings = settings
        self.read_only = read_only
        self._store = CollectionStore(directory)
        if read_only:
            self._version = self._store.version()
            self._state: StoredState = self._store.load_consistent()
        else:
            self._store.lock()
            try:
                self._state = self._store.load()
            except Exception:
                self._store.close()
                raise
        self._ocr: Any = None
        self.image_paths = True
        """Whether ``image`` may name a local file (the server turns this off)."""
        self.max_text_chars = MAX_TEXT_CHARS
        """Longest document text :meth:`upsert` accepts (the server sets its own limit)."""
        self.should_stop: Callable[[], bool] = _never
        """Asked between batches of an upsert (and of its embedding): True stops it with
        :class:`ShuttingDownError`, the batches acknowledged so far kept (server shutdown)."""
        self._milvus: Any = None
        if settings.vector_store == "milvus":
            try:
                self._milvus = self._open_milvus()
                if not read_only:
                    self._sync_milvus()
            except Exception:
                self.close()
                raise
        self._embedders: dict[str, Any] = dict(embedders or {})
        self._rerankers: dict[str, Any] = dict(rerankers or {})
        self._sparse: tuple[BM25Index, list[str]] | None = None
        self._dense: dict[str, tuple[DenseIndex, np.ndarray, list[str]]] = {}
        self._mask_cache: tuple[set[str], np.ndarray] | None = None
        self._languages: frozenset[str] = frozenset()
        self._query_languages: dict[str, str] = {}
        self._doc_languages: dict[str, str] = {}
        self._stage_cache: dict[tuple[Any, ...], Any] | None = None

    # -- lifecycle ------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        name: str,
        *,
        root: Path | None = None,
        settings: CollectionSettings | None = None,
        embedders: Mapping[str, Any] | None = None,
        rerankers: Mapping[str, Any] | None = None,
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
        embedders: Mapping[str, Any] | None = None,
        rerankers: Mapping[str, Any] | None = None,
        read_only: bool = False,
    ) -> Collection:
        """Open an existing collection; ``read_only`` opens it beside a writer, seeing the
        acknowledged writes as of now (:meth:`refresh` catches up later)."""
        check_name(name)
        directory = (root or default_root()) / name
        if not directory.is_dir():
            raise CollectionNotFoundError(f"collection {name!r} does not exist", field="name")
        settings = read_settings(CollectionStore(directory))
        return cls(
            directory, settings, embedders=embedders, rerankers=rerankers, read_only=read_only
        )

    def refresh(self) -> bool:
        """Read-only: reload if a writer acknowledged anything since; True when it did."""
        if not self.read_only:
            return False
        version = self._store.version()
        if version == self._version:
            return False
        self._state = self._store.load_consistent()
        self._version = version
        self._invalidate()
        return True

    def update_settings(self, **changes: Any) -> CollectionSettings:
        """Change search-time settings (BM25 language, fusion, fusion_weights,
        rerank_candidates, reranker), saved atomically; settings that shape the stored data
        need a new collection."""
        self._check_writable()
        allowed = {"language", "fusion", "fusion_weights", "rerank_candidates", "reranker"}
        unknown = set(changes) - allowed
        if unknown:
            raise InputError(
                f"only {', '.join(sorted(allowed))} can change on an existing collection; "
                f"{', '.join(sorted(unknown))} shape the stored data (create a new collection)",
                field=sorted(unknown)[0],
            )
        if changes.get("fusion_weights") is not None:
            changes["fusion_weights"] = tuple(float(w) for w in changes["fusion_weights"])
        settings = replace(self.settings, **changes).validate()
        self._store.write_settings(settings_json(settings))
        self.settings = settings
        self._invalidate()
        return settings

    # -- Milvus (the scale path) ----------------------------------------------------------
    def _open_milvus(self) -> Any:
        from omniretrieve.index.milvus_store import MilvusVectors

        uri = self.settings.milvus_uri or str(self.directory / "milvus.db")
        return MilvusVectors(uri, self.name)

    def _push_milvus(self, doc_ids: Sequence[str], models: Sequence[str] | None = None) -> None:
        """Copy these documents' stored vectors to Milvus (after the WAL acknowledged them)."""
        if self._milvus is None or not doc_ids:
            return
        from omniretrieve.index.milvus_store import row_version

        for model_id in models or self.settings.embedders:
            per_doc = self._state.passages.get(field_name(model_id), {})
            rows = []
            dimension = 0
            for doc_id in doc_ids:
                if doc_id not in per_doc:
                    continue
                document = self._state.documents[doc_id]
                vectors = per_doc[doc_id][1]
                dimension = vectors.shape[1]
                version = row_version(document.content_hash, document.metadata)
                rows.append((doc_id, version, document.metadata, vectors))
            if rows:
                self._milvus.upsert(field_name(model_id), dimension, rows)

    def _sync_milvus(self) -> None:
        """Make Milvus hold exactly the directory's vectors (after a crash between a WAL
        acknowledgement and its Milvus push, or after Milvus lost data)."""
        from omniretrieve.index.milvus_store import row_version

        for model_id in self.settings.embedders:
            name = field_name(model_id)
            local = {
                doc_id: row_version(
                    self._state.documents[doc_id].content_hash,
                    self._state.documents[doc_id].metadata,
                )
                for doc_id in self._state.passages.get(name, {})
            }
            remote = self._milvus.hashes(name)
            stale = [d for d in remote if d not in local]
            if stale:
                self._milvus.delete(stale, [name])
            missing = [d for d, version in local.items() if remote.get(d) != version]
            for start in range(0, len(missing), UPSERT_BATCH):
                self._push_milvus(missing[start : start + UPSERT_BATCH], models=(model_id,))

    def _check_writable(self) -> None:
        if self.read_only:
            raise InputError(f"collection {self.name!r} is open read-only", field="name")

    @staticmethod
    def list(root: Path | None = None) -> list[str]:
        base = root or default_root()
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "collection.json").is_file())

    @staticmethod
    def drop(name: str, root: Path | None = None) -> None:
        check_name(name)
        directory = (root or default_root()) / name
        if not (directory / "collection.json").is_file():
            raise CollectionNotFoundError(f"collection {name!r} does not exist", field="name")
        store = CollectionStore(directory)
        store.lock()  # never drop a collection another process is writing
        try:
            try:
                settings = read_settings(store)
            except CollectionFormatError:
                settings = None  # a damaged collection can still be dropped (its folder)
            if settings and settings.vector_store == "milvus" and settings.milvus_uri:
                from omniretrieve.index.milvus_store import MilvusVectors

                remote = MilvusVectors(settings.milvus_uri, name)
                remote.drop(field_name(m) for m in settings.embedders)
                remote.close()
        finally:
            store.close()
        shutil.rmtree(directory)

    def flush(self) -> None:
        """Write a snapshot and empty the write-ahead log."""
        self._check_writable()
        self._store.compact(self._state)

    @property
    def has_unflushed_writes(self) -> bool:
        """Whether acknowledged writes wait in the WAL (a :meth:`flush` would change files)."""
        return not self.read_only and self._store.wal_bytes() > 0

    def close(self) -> None:
        if self._milvus is not None:
            self._milvus.close()
            self._milvus = None
        self._store.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._state.documents)

    # -- models ---------------------------------------------------------------------------
    def embedder(self, model_id: str) -> Any:
        if model_id not in self._embedders:
            from omniretrieve.embedder import Embedder

            self._embedders[model_id] = Embedder(model_id)
        return self._embedders[model_id]

    def reranker(self, model_id: str) -> Any:
        if model_id not in self._rerankers:
            from omniretrieve.reranker import Reranker

            shared = next(iter(self._embedders.values()), None)
            self._rerankers[model_id] = Reranker(
                model_id, embedding_model=shared.model if shared is not None else None
            )
        return self._rerankers[model_id]

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
        with progress_bar(len(items), f"indexing {self.name}", enabled=show_progress) as advance:
            for batch in upsert_batches(items):
                counts = self._upsert_batch(batch, guard)
                totals = [a + b for a, b in zip(totals, counts, strict=True)]
                advance(len(batch))
        with guard():
            if self._store.wal_bytes() > COMPACT_WAL_BYTES:
                self.flush()
        return UpsertReport(*totals)

    def check_documents(self, documents: Iterable[Any]) -> list[StoredDocument]:
        """Documents parsed and checked as :meth:`upsert` takes them (ids unique, texts within
        :attr:`max_text_chars`, metadata plain JSON); nothing is stored."""
        items = [
            parse_document(d, i, max_text_chars=self.max_text_chars)
            for i, d in enumerate(documents)
        ]
        seen: set[str] = set()
        for index, item in enumerate(items):
            if item.doc_id in seen:
                raise InputError(
                    f"documents[{index}]: id {item.doc_id!r} appears twice in one batch",
                    field=f"documents[{index}].id",
                )
            seen.add(item.doc_id)
        return items

    def _upsert_batch(
        self, batch: Sequence[StoredDocument], guard: Callable[[], AbstractContextManager[Any]]
    ) -> tuple[int, int, int, int]:
        with guard():
            self._stop_if_asked()
            plan = self._classify(batch)
        embedded_entries, embedded = self._embed_documents(plan.to_embed)
        with guard():
            if self._stored_versions(batch) != plan.versions:  # written meanwhile: redo
                plan = self._classify(batch)
                embedded_entries, embedded = self._embed_documents(plan.to_embed)
            record = {"op": "upsert", "documents": plan.entries + embedded_entries}
            if record["documents"]:
                self._store.append(record)
                apply(self._state, record)
                self._invalidate()
                self._push_milvus([e["document"]["id"] for e in record["documents"]])
        return (*plan.counts, embedded)

    def _stop_if_asked(self) -> None:
        if self.should_stop():
            raise ShuttingDownError(
                f"collection {self.name!r}: the upsert stopped for shutdown; batches "
                "acknowledged before it are stored, the rest are not (send them again: "
                "unchanged documents are skipped)"
            )

    def _stored_versions(self, batch: Sequence[StoredDocument]) -> tuple[int, ...]:
        """Identity of each document's stored version (any write replaces the object)."""
        return tuple(id(self._state.documents.get(d.doc_id)) for d in batch)

    def _classify(self, batch: Sequence[StoredDocument]) -> _BatchPlan:
        """What a batch needs: new or changed texts to embed, metadata-only updates (their
        stored vectors kept), unchanged documents skipped."""
        entries: list[dict[str, Any]] = []
        to_embed: list[StoredDocument] = []
        added = updated = unchanged = 0
        for document in batch:
            previous = self._state.documents.get(document.doc_id)
            if previous is None:
                added += 1
            elif previous.content_hash == document.content_hash:
                read_by_ocr = previous.metadata.get("ocr") is True
                if read_by_ocr:  # keep the text OCR added, and say so
                    document = replace(
                        document,
                        text=previous.text,
                        metadata={**document.metadata, "ocr": True},
                    )
                if previous.metadata == document.metadata:
                    unchanged += 1
                    continue
                updated += 1
                vectors = {
                    name: {
                        "spans": [list(s) for s in per_doc[document.doc_id][0]],
                        "vectors": encode_vectors(per_doc[document.doc_id][1]),
                    }
                    for name, per_doc in self._state.passages.items()
                    if document.doc_id in per_doc
                }
                entries.append({"document": document.to_json(), "vectors": vectors})
                continue
            else:
                updated += 1
            to_embed.append(document)
        return _BatchPlan(
            entries, to_embed, (added, updated, unchanged), self._stored_versions(batch)
        )

    def _embed_documents(self, to_embed: list[StoredDocument]) -> tuple[list[dict[str, Any]], int]:
        """WAL entries (document + passage vectors per field) of documents to embed, and how
        many passages were embedded."""
        if not to_embed:
            return [], 0
        embedded = 0
        to_embed = self._read_images(to_embed)
        vectors_by_doc: dict[str, dict[str, Any]] = {d.doc_id: {} for d in to_embed}
        for model_id in self.settings.embedders:
            spans_by_doc, vectors = self._embed_passages(model_id, to_embed)
            row = 0
            for document in to_embed:
                spans = spans_by_doc[document.doc_id]
                block = vectors[row : row + len(spans)]
                row += len(spans)
                vectors_by_doc[document.doc_id][field_name(model_id)] = {
                    "spans": [list(s) for s in spans],
                    "vectors": encode_vectors(block),
                }
            embedded += row
        entries = [
            {"document": document.to_json(), "vectors": vectors_by_doc[document.doc_id]}
            for document in to_embed
        ]
        return entries, embedded

    def _read_images(self, documents: list[StoredDocument]) -> list[StoredDocument]:
        """Documents with an image, for a collection of text embedders: the text OCR reads in
        the image is added to the document's text (``metadata.ocr`` says so), so both parts
        are indexed and the reranker sees both. Images are inline (data URI or base64), or
        local files when the collection allows paths (the library; never the server)."""
        wanted = [d for d in documents if d.image and "ocr" not in d.metadata]
        if not wanted or not self.settings.ocr_images:
            return documents
        reader = self._ocr_reader()
        images = {document.doc_id: self._image_bytes(document) for document in wanted}
        texts = dict(zip(images, reader.read_many(list(images.values())), strict=True))
        out = []
        for document in documents:
            if document.doc_id in texts:
                combined = f"{document.text}\n{texts[document.doc_id]}".strip()
                document = replace(
                    document, text=combined, metadata={**document.metadata, "ocr": True}
                )
            out.append(document)
        return out

    def _image_bytes(self, document: StoredDocument) -> bytes:
        """A document's image: inline (data URI or base64), or a local file when the collection
        allows paths (the library; never the server)."""
        from omniretrieve.inputs import decode_image_bytes

        source = str(document.image)
        path = Path(source.split("#page=")[0])
        if self.image_paths and not source.startswith("data:") and path.is_file():
            return path.read_bytes()
        return decode_image_bytes(source, field=f"{document.doc_id}.image")

    def _ocr_reader(self) -> Any:
        if self._ocr is None:
            from omniretrieve.ocr.reader import OcrReader

            self._ocr = OcrReader(self.settings.ocr_engine)
        return self._ocr

    def _embed_passages(
        self, model_id: str, documents: Sequence[StoredDocument]
    ) -> tuple[dict[str, list[tuple[int, int]]], np.ndarray]:
        """Per document, its passages' spans, and their vectors in document order. A model that
        reads images also embeds a document's image, as one more passage (span
        :data:`IMAGE_SPAN`)."""
        embedder = self.embedder(model_id)
        reads_images = "image" in getattr(embedder, "modalities", frozenset({"text"}))
        spans_by_doc: dict[str, list[tuple[int, int]]] = {}
        texts: list[str] = []
        images: list[Any] = []
        for document in documents:
            with_image = reads_images and bool(document.image)
            if not document.text.strip() and not with_image:
                raise InputError(
                    f"document {document.doc_id!r} has no text and model {model_id!r} takes "
                    "text only",
                    field="documents",
                )
            spans = self._text_spans(document, embedder) if document.text.strip() else []
            texts.extend(document.text[a:b] for a, b in spans)
            if with_image:
                from omniretrieve.inputs import ImageInput

                spans = [*spans, IMAGE_SPAN]
                images.append(ImageInput(self._image_bytes(document)))
            spans_by_doc[document.doc_id] = spans
        text_vectors = np.zeros((0, embedder.dimension), dtype=np.float32)
        if texts:
            blocks = []
            for start in range(0, len(texts), EMBED_CHUNK):
                self._stop_if_asked()
                chunk = texts[start : start + EMBED_CHUNK]
                blocks.append(
                    embedder.encode_texts(chunk, task="retrieval.passage", show_progress=False)
                )
            text_vectors = np.concatenate(blocks).astype(np.float32, copy=False)
        if not images:
            return spans_by_doc, text_vectors
        image_vectors = embedder.encode(images, task="retrieval.passage").embeddings
        rows, next_text, next_image = [], iter(text_vectors), iter(image_vectors)
        for document in documents:
            for span in spans_by_doc[document.doc_id]:
                rows.append(next(next_image) if span == IMAGE_SPAN else next(next_text))
        return spans_by_doc, np.asarray(rows, dtype=np.float32)

    def _text_spans(self, document: StoredDocument, embedder: Any) -> list[tuple[int, int]]:
        if self.settings.passages == "first":
            return [(0, len(document.text))]
        return passage_spans(
            document.text,
            embedder.model.tokenizer,
            max_tokens=embedder.max_length,
            overlap=self.settings.passage_overlap,
            boundaries=definition_starts(document.text, language_of(document.metadata)),
        )

    def delete(self, ids: Iterable[str]) -> int:
        """Delete documents by id; returns how many existed."""
        self._check_writable()
        present = [doc_id for doc_id in ids if doc_id in self._state.documents]
        if present:
            record = {"op": "delete", "ids": present}
            self._store.append(record)
            apply(self._state, record)
            self._invalidate()
            if self._milvus is not None:
                self._milvus.delete(present, (field_name(m) for m in self.settings.embedders))
        return len(present)

    def get(self, doc_id: str) -> StoredDocument | None:
        return self._state.documents.get(doc_id)

    def vectors(self, doc_id: str, model_id: str | None = None) -> np.ndarray | None:
        """The passage vectors stored for a document (for checks and exports)."""
        name = field_name(model_id or self.settings.embedders[0])
        entry = self._state.passages.get(name, {}).get(doc_id)
        return None if entry is None else entry[1]

    def _embedder_ids(self) -> set[str]:
        """Model ids of this collection's loaded embedders (resolved names, not settings keys)."""
        return {self.embedder(key).model_id for key in self.settings.embedders}

    def _embedder_key(self, model_id: str) -> str:
        return next(k for k in self.settings.embedders if self.embedder(k).model_id == model_id)

    def _invalidate(self) -> None:
        self._sparse = None
        self._query_languages = {}
        self._doc_languages = {}
        if self._stage_cache is not None:
            self._stage_cache = {}
        self._mask_cache = None
        self._dense.clear()

    # -- indexes --------------------------------------------------------------------------
    def _sparse_index(self) -> tuple[BM25Index | None, list[str]]:
        """BM25 over the documents (None while there are none) and the ids of its rows."""
        if self._sparse is None:
            ids = list(self._state.documents)
            if not ids:
                self._languages = frozenset()
                return None, []
            texts = [self._state.documents[i].text for i in ids]
            analyzer = Analyzer(self.settings.language)
            languages = None
            if analyzer.language == "auto":
                languages = [self._document_language(i) for i in ids]
                self._languages = frozenset(languages)
            else:
                self._languages = frozenset({analyzer.language})
            self._sparse = (BM25Index(texts, analyzer=analyzer, languages=languages), ids)
        return self._sparse

    def _document_language(self, doc_id: str) -> str:
        """The language a document's text is analysed in (its ``metadata.lang``, else
        detected), remembered until the documents change."""
        known = self._doc_languages.get(doc_id)
        if known is None:
            known = self._doc_languages[doc_id] = self._detect_document_language(doc_id)
        return known

    def _detect_document_language(self, doc_id: str) -> str:
        from omniretrieve.text.language import detect_or, normalise

        document = self._state.documents[doc_id]
        given = document.metadata.get("lang")
        if isinstance(given, str) and 2 <= len(given) <= 3:
            return normalise(given)
        # the opening is enough (and 3x faster); unsure (code, tables): English analysis
        return detect_or(document.text[:500], "en")

    def query_language(self, query: str) -> str:
        """The query's language, chosen among the languages of the collection's documents."""
        from omniretrieve.text.language import detect

        self._sparse_index()
        known = self._query_languages.get(query)
        if known is None:
            known = detect(query, among=self._languages or None)
            if len(self._query_languages) >= QUERY_LANGUAGE_CACHE:
                self._query_languages.clear()
            self._query_languages[query] = known
        return known

    def _dense_index(self, model_id: str) -> tuple[DenseIndex, np.ndarray, list[str]]:
        """The faiss index of a vector field, per row the position of the passage's document,
        and the document ids those positions index."""
        name = field_name(model_id)
        if name not in self._dense:
            per_doc = self._state.passages.get(name, {})
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
                matrix = np.zeros((0, self.embedder(model_id).dimension), np.float32)
            owners = np.repeat(np.arange(len(doc_ids), dtype=np.int64), counts)
            config = DenseConfig(
                quantization=self.settings.quantization,  # type: ignore[arg-type]
                hnsw_threshold=self.settings.hnsw_threshold,
            )
            self._dense[name] = (DenseIndex(matrix, config), owners, doc_ids)
        return self._dense[name]

    # -- searching ------------------------------------------------------------------------
    @contextmanager
    def reusing_first_stages(self) -> Iterator[None]:
        """Within the block, each query's BM25 list, its list per vector field and its query
        vectors are computed once and reused by later searches with the same filter (an
        evaluation runs several pipelines over the same queries). The memory they take (some
        kilobytes per query and list) is released when the block ends."""
        previous = self._stage_cache
        if previous is None:
            self._stage_cache = {}
        try:
            yield
        finally:
            self._stage_cache = previous

    def search(
        self,
        query: str,
        *,
        top_k: int = 10,
        mode: str = "hybrid",
        rerank: bool | str = False,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 (the API's field name)
        embedders: Sequence[str] | Literal["auto"] | None = None,
        fusion_weights: Sequence[float] | None = None,
    ) -> list[SearchHit]:
        return self.search_many(
            [query],
            top_k=top_k,
            mode=mode,
            rerank=rerank,
            filter=filter,
            embedders=embedders,
            fusion_weights=fusion_weights,
        )[0]

    def search_many(
        self,
        queries: Sequence[str],
        *,
        top_k: int = 10,
        mode: str = "hybrid",
        rerank: bool | str = False,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 (the API's field name)
        embedders: Sequence[str] | Literal["auto"] | None = None,
        fusion_weights: Sequence[float] | None = None,
        route_by_language: bool = False,
        show_progress: bool = False,
    ) -> list[list[SearchHit]]:
        """Search several queries with the same settings: their vectors are computed in one
        batch and the dense index is searched once for all of them.

        ``embedders`` picks which of the collection's vector fields dense and hybrid search
        use: all of them by default; ``"auto"``: per query, the fields whose model covers the
        query's language (for hybrid search, none when no model covers it: BM25 alone; for
        dense search, all). ``fusion_weights`` (BM25's first, then one per field in use)
        overrides the collection's for this call; when routing, one per field named, of which
        each query uses those of its fields. ``route_by_language`` routes among the given
        ``embedders`` as ``"auto"`` does among all."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InputError("top_k must be a positive integer", field="top_k")
        want = max(top_k, self.settings.rerank_candidates if rerank else top_k)
        plan = self._plan(queries, mode, filter, embedders, route_by_language, want)
        self._fusion_weights(plan.fields, fusion_weights, plan.fields)  # checked before work
        dense_runs, query_vectors = self._dense_stage(queries, plan, show_progress)
        results: list[list[SearchHit]] = []
        with progress_bar(len(queries), "searching", enabled=show_progress) as advance:
            for position, query in enumerate(queries):
                stage_scores, used = self._query_stages(query, dense_runs[position], plan)
                weights = self._fusion_weights(used, fusion_weights, plan.fields)
                first = self._fuse(stage_scores, weights, mode)
                if mode == "hybrid" or len(stage_scores) > 1:
                    stage_scores["fused"] = first
                ranked = top(first, want)
                if rerank:
                    model_id = self.settings.reranker if rerank is True else str(rerank)
                    vectors = {k: v[position] for k, v in query_vectors.items()}
                    ranked = self._rerank(model_id, query, ranked, stage_scores, vectors)
                results.append(self._hits(ranked[:top_k], stage_scores))
                advance(1)
        return results

    def first_stage_runs(
        self,
        queries: Sequence[str],
        *,
        depth: int = FIRST_STAGE,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 (the API's field name)
        embedders: Sequence[str] | Literal["auto"] | None = None,
        route_by_language: bool = False,
        show_progress: bool = False,
    ) -> tuple[tuple[str, ...], list[FirstStage]]:
        """The lists hybrid search fuses, per query, before fusion: for choosing fusion
        weights without searching once per candidate weight (see :meth:`fuse_runs`). Returns
        the vector fields in play and, per query, its lists and the fields it used."""
        plan = self._plan(queries, "hybrid", filter, embedders, route_by_language, depth)
        dense_runs, _ = self._dense_stage(queries, plan, show_progress)
        stages = []
        with progress_bar(len(queries), "first stage", enabled=show_progress) as advance:
            for query, dense in zip(queries, dense_runs, strict=True):
                runs, used = self._query_stages(query, dense, plan)
                stages.append(FirstStage(runs, used))
                advance(1)
        return plan.fields, stages

    def fuse_runs(
        self,
        stage: FirstStage,
        fields: tuple[str, ...],
        fusion_weights: Sequence[float] | None = None,
    ) -> dict[str, float]:
        """Hybrid search's fused scores for one query's first stage (as search_many fuses
        them), with ``fusion_weights`` over BM25 and ``fields``."""
        weights = self._fusion_weights(stage.fields, fusion_weights, fields)
        return self._fuse(dict(stage.runs), weights, "hybrid")

    def _plan(
        self,
        queries: Sequence[str],
        mode: str,
        filter: Mapping[str, Any] | None,  # noqa: A002
        embedders: Sequence[str] | Literal["auto"] | None,
        route_by_language: bool,
        want: int,
    ) -> _SearchPlan:
        for position, query in enumerate(queries):
            field_path = "query" if len(queries) == 1 else f"queries[{position}]"
            if not isinstance(query, str) or not query.strip():
                raise InputError(f"{field_path} is an empty text", field=field_path)
            check_text(query, field_path)
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}; got {mode!r}", field="mode")
        routing = route_by_language or embedders == "auto"
        chosen = None if embedders == "auto" else embedders
        fields = self._vector_fields(chosen)  # type: ignore[arg-type]
        if mode == "dense" and not fields:
            raise InputError(
                f"collection {self.name!r} holds no vectors (BM25 only): use mode 'sparse'",
                field="mode",
            )
        allowed = self._filter(filter) if filter else None
        filter_key = json.dumps(filter, sort_keys=True, default=str) if filter else None
        return _SearchPlan(
            mode, fields, routing, allowed, filter, filter_key, max(want, FIRST_STAGE)
        )

    def _dense_stage(
        self, queries: Sequence[str], plan: _SearchPlan, show_progress: bool
    ) -> tuple[list[dict[str, dict[str, float]]], dict[str, np.ndarray]]:
        """Per query, each vector field's list; and the query vectors per field."""
        dense_runs: list[dict[str, dict[str, float]]] = [{} for _ in queries]
        query_vectors: dict[str, np.ndarray] = {}
        if plan.mode not in ("dense", "hybrid"):
            return dense_runs, query_vectors
        cache = self._stage_cache
        for model_id in plan.fields:
            if cache is None:
                vectors = self.embedder(model_id).encode_texts(
                    list(queries), task="retrieval.query", show_progress=show_progress
                )
                runs = self._dense_search(model_id, vectors, plan.depth, plan.allowed, plan.filter)
            else:
                vectors, runs = self._cached_dense(model_id, queries, plan, cache, show_progress)
            query_vectors[model_id] = vectors
            for stage, run in zip(dense_runs, runs, strict=True):
                stage[f"dense:{model_id}"] = run
        return dense_runs, query_vectors

    def _cached_dense(
        self,
        model_id: str,
        queries: Sequence[str],
        plan: _SearchPlan,
        cache: dict[tuple[Any, ...], Any],
        show_progress: bool,
    ) -> tuple[np.ndarray, list[dict[str, float]]]:
        """:meth:`_dense_stage` for one field, computing only what the stage cache lacks."""
        run_key = ("dense", model_id, plan.depth, plan.filter_key)
        missing = list(dict.fromkeys(q for q in queries if (*run_key, q) not in cache))
        unencoded = [q for q in missing if ("vector", model_id, q) not in cache]
        if unencoded:
            encoded = self.embedder(model_id).encode_texts(
                unencoded, task="retrieval.query", show_progress=show_progress
            )
            for query, vector in zip(unencoded, encoded, strict=True):
                cache[("vector", model_id, query)] = vector
        if missing:
            vectors = np.stack([cache[("vector", model_id, q)] for q in missing])
            runs = self._dense_search(model_id, vectors, plan.depth, plan.allowed, plan.filter)
            for query, run in zip(missing, runs, strict=True):
                cache[(*run_key, query)] = run
        vectors = np.stack([cache[("vector", model_id, q)] for q in queries])
        return vectors, [cache[(*run_key, q)] for q in queries]

    def _query_stages(
        self, query: str, dense: dict[str, dict[str, float]], plan: _SearchPlan
    ) -> tuple[dict[str, dict[str, float]], tuple[str, ...]]:
        """One query's lists (BM25's first) and the vector fields it uses."""
        mode, fields = plan.mode, plan.fields
        language = self.query_language(query) if plan.routing or mode != "dense" else None
        used = fields
        stage_scores = dict(dense)
        if plan.routing and mode != "sparse":
            used = self._covering(fields, language)
            if not used and mode == "dense":
                used = fields  # dense search must use some model: all of them
            for model_id in fields:
                if model_id not in used:
                    stage_scores.pop(f"dense:{model_id}", None)
        if mode in ("sparse", "hybrid"):
            cache = self._stage_cache
            key = ("sparse", query, language, plan.depth, plan.filter_key)
            sparse = None if cache is None else cache.get(key)
            if sparse is None:
                sparse = self._sparse_search(query, plan.depth, plan.allowed, language)
                if cache is not None:
                    cache[key] = sparse
            stage_scores = {"sparse": sparse, **stage_scores}
        return stage_scores, used

    def _fuse(
        self, stage_scores: dict[str, dict[str, float]], weights: list[float] | None, mode: str
    ) -> dict[str, float]:
        """The first stage's ranking: fused lists in hybrid mode (and dense over several
        fields), else the one list."""
        fuse = zscore_fusion if self.settings.fusion == "zscore" else rrf_fusion
        if mode == "hybrid":
            return fuse(list(stage_scores.values()), weights)
        if mode == "dense" and len(stage_scores) > 1:
            return fuse(list(stage_scores.values()), None if weights is None else weights[1:])
        return next(iter(stage_scores.values()))

    def _vector_fields(self, embedders: Sequence[str] | None) -> tuple[str, ...]:
        if embedders is None:
            return self.settings.embedders
        unknown = [e for e in embedders if e not in self.settings.embedders]
        if unknown or not embedders:
            raise InputError(
                f"embedders must name this collection's embedders "
                f"({', '.join(self.settings.embedders)}); got {', '.join(unknown) or 'none'}",
                field="embedders",
            )
        return tuple(embedders)

    def _fusion_weights(
        self,
        used: tuple[str, ...],
        override: Sequence[float] | None = None,
        fields: tuple[str, ...] | None = None,
    ) -> list[float] | None:
        """BM25's weight and the weights of the vector fields ``used``: from ``override``
        (one per field of ``fields``, the fields in play) or the collection's settings."""
        if override is not None:
            fields = used if fields is None else fields
            if len(override) != 1 + len(fields) or any(w < 0 for w in override):
                raise InputError(
                    "fusion_weights needs one non-negative weight for BM25 and one per embedder",
                    field="fusion_weights",
                )
            return [float(override[0])] + [float(override[1 + fields.index(m)]) for m in used]
        weights = self.settings.fusion_weights
        if weights is None:
            return None
        chosen = [weights[0]]
        for model_id in used:
            chosen.append(weights[1 + self.settings.embedders.index(model_id)])
        return chosen

    def _covering(self, fields: tuple[str, ...], language: str | None) -> tuple[str, ...]:
        """The fields whose model was trained on ``language`` (none: hybrid search then
        relies on BM25 alone, which needs no training in the language)."""
        chosen = []
        for model_id in fields:
            declared = self.embedder(model_id).languages
            if declared is None or language in declared:
                chosen.append(model_id)
        return tuple(chosen)

    def _hits(
        self, ranked: Sequence[tuple[str, float]], stage_scores: dict[str, dict[str, float]]
    ) -> list[SearchHit]:
        documents = self._state.documents
        stages = list(stage_scores.items())
        hits = []
        for doc_id, score in ranked:
            document = documents[doc_id]
            scores = {stage: values[doc_id] for stage, values in stages if doc_id in values}
            hits.append(SearchHit(doc_id, float(score), document.text, document.metadata, scores))
        return hits

    def _filter(self, conditions: Mapping[str, Any]) -> set[str]:
        allowed = set()
        for doc_id, document in self._state.documents.items():
            if all(matches(document.metadata.get(key), cond) for key, cond in conditions.items()):
                allowed.add(doc_id)
        return allowed

    def _sparse_search(
        self, query: str, k: int, allowed: set[str] | None, language: str | None = None
    ) -> dict[str, float]:
        index, ids = self._sparse_index()
        if index is None:
            return {}
        if index.analyzer.language != "auto":
            language = None
        elif language is None:
            language = self.query_language(query)
        scores = index.scores(query, language)
        if allowed is not None:
            scores = np.where(self._sparse_mask(ids, allowed), scores, -np.inf)
        k = min(k, len(ids))
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[scores[best] > 0]  # -inf (filtered out) and no matching term
        return dict(zip([ids[i] for i in best.tolist()], scores[best].tolist(), strict=True))

    def _sparse_mask(self, ids: list[str], allowed: set[str]) -> np.ndarray:
        """Which BM25 rows a filter lets through (kept while the same filter repeats)."""
        cached = self._mask_cache
        if cached is not None and cached[0] is allowed:
            return cached[1]
        mask = np.fromiter((i in allowed for i in ids), dtype=bool, count=len(ids))
        self._mask_cache = (allowed, mask)
        return mask

    def _query_vector(self, key: str, query: str, cache: dict[str, np.ndarray]) -> np.ndarray:
        """The query's vector from embedder ``key``, computed once per search."""
        if key not in cache:
            cache[key] = self.embedder(key).encode_texts([query], task="retrieval.query")[0]
        return cache[key]

    def _dense_search(
        self,
        model_id: str,
        query_vectors: np.ndarray,
        k: int,
        allowed: set[str] | None,
        conditions: Mapping[str, Any] | None = None,
    ) -> list[dict[str, float]]:
        """Per query: document id -> aggregated passage score, best ``k`` documents."""
        if self._milvus is not None:
            found = self._milvus.search(field_name(model_id), query_vectors, k * 3, conditions)
            return [self._aggregate(hits, k) for hits in found]
        index, owners, doc_ids = self._dense_index(model_id)
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
        runs = []
        for row_scores, row_ids in zip(scores, found, strict=True):
            valid = row_ids >= 0
            runs.append(self._aggregate_rows(owners[row_ids[valid]], row_scores[valid], doc_ids, k))
        return runs

    def _aggregate_rows(
        self, owners: np.ndarray, scores: np.ndarray, doc_ids: list[str], k: int
    ) -> dict[str, float]:
        """Passage hits (their documents' positions, best first) -> the best ``k`` documents."""
        if owners.size == 0:
            return {}
        if self.settings.aggregate == "max":  # hits come best first: a document's first is max
            positions, first = np.unique(owners, return_index=True)
            per_doc = scores[first].astype(np.float64)
        else:
            positions, inverse = np.unique(owners, return_inverse=True)
            per_doc = np.bincount(inverse, weights=scores.astype(np.float64))
        order = np.lexsort((positions, -per_doc))[:k]
        chosen = positions[order].tolist()
        return dict(zip([doc_ids[i] for i in chosen], per_doc[order].tolist(), strict=True))

    def _aggregate(self, passages: Sequence[tuple[str, float]], k: int) -> dict[str, float]:
        """Passage scores -> document scores (max or sum), best ``k`` documents."""
        per_doc: dict[str, float] = {}
        for doc_id, score in passages:
            if self.settings.aggregate == "max":
                per_doc[doc_id] = max(per_doc.get(doc_id, -np.inf), score)
            else:
                per_doc[doc_id] = per_doc.get(doc_id, 0.0) + score
        return dict(top(per_doc, k))

    def _rerank(
        self,
        model_id: str,
        query: str,
        ranked: list[tuple[str, float]],
        stage_scores: dict[str, dict[str, float]],
        query_vectors: dict[str, np.ndarray],
    ) -> list[tuple[str, float]]:
        candidates = ranked[: self.settings.rerank_candidates]
        if not candidates:
            return ranked
        texts = [self._state.documents[doc_id].text for doc_id, _ in candidates]
        reranker = self.reranker(model_id)
        fast = getattr(reranker.model, "score_with_similarities", None)
        embedder_id = reranker.model.embedder.model_id if fast else None
        if fast is not None and embedder_id in self._embedder_ids():
            # The reranker embeds each document as its model sees it, cut at the model's
            # length: that is exactly the stored first passage, so reuse it instead.
            key = self._embedder_key(embedder_id)
            query_vector = self._query_vector(key, query, query_vectors)
            per_doc = self._state.passages[field_name(key)]
            cosine = np.array(
                [float(per_doc[doc_id][1][0] @ query_vector) for doc_id, _ in candidates],
                dtype=np.float32,
            )
            languages = [self._document_language(doc_id) for doc_id, _ in candidates]
            scores = fast(query, texts, cosine, languages)
            order = np.argsort(-scores, kind="stable")
            reranked = [(candidates[i][0], float(scores[i])) for i in order]
        else:
            response = reranker.rerank(query, texts, return_documents=False)
            reranked = [(candidates[r.index][0], r.relevance_score) for r in response.results]
        stage_scores["rerank"] = dict(reranked)
        return reranked + ranked[len(candidates) :]


def _never() -> bool:
    return False


def matches(value: Any, condition: Any) -> bool:
    if isinstance(condition, Mapping):
        if set(condition) != {"in"} or not isinstance(condition["in"], list):
            raise InputError('a filter condition is a value or {"in": [values]}', field="filter")
        return value in condition["in"]
    return value == condition


__all__ = ["Collection", "CollectionSettings", "OmniRetrieveError", "SearchHit", "UpsertReport"]
