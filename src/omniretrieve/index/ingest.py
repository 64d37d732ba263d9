"""Turning documents into WAL entries: which need embedding (new or changed text), which keep
their stored vectors (metadata-only changes), which are unchanged; OCR of images for text
embedders; passages split to fit each embedder and embedded, with a document's image as one
more passage for embedders that read images. Nothing here writes: the collection acknowledges
what this prepares."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.checks import MAX_TEXT_CHARS
from omniretrieve.errors import InputError, ShuttingDownError
from omniretrieve.index.code_units import definition_starts, language_of
from omniretrieve.index.documents import parse_document
from omniretrieve.index.field_outputs import Fields, embed_passages, field_entries, model_outputs
from omniretrieve.index.milvus_documents import prefetch
from omniretrieve.index.model_protocols import IndexEmbedder
from omniretrieve.index.passages import passage_spans
from omniretrieve.index.records import OCR_FROM
from omniretrieve.index.settings import CollectionSettings, field_name
from omniretrieve.index.store import StoredDocument, StoredState, encode_vectors
from omniretrieve.index.stored_files import StoredFiles, parse_ref
from omniretrieve.inputs import ImageInput, decode_image_bytes
from omniretrieve.ocr.reader import OcrReader

OCR_KEYS = ("ocr", OCR_FROM)
"""Metadata a re-upsert of an unchanged document keeps: its text holds OCR's."""

UPSERT_BATCH = 256
UPSERT_BATCH_CHARS = 200_000
"""A batch also ends past this many characters: each acknowledgement (and each time a server
holds the collection's lock) covers a bounded amount of embedding work."""
EMBED_CHUNK = 64
"""Passages embedded between two checks of :attr:`IngestOptions.should_stop`."""
IMAGE_SPAN = (-1, -1)
"""The span of a passage that is the document's image (embedded by a model that reads images)."""


def never() -> bool:
    return False


@dataclass
class IngestOptions:
    image_paths: bool = True
    """Whether ``image`` may name a local file (the server turns this off)."""
    dtype: str = "auto"
    """Precision of the embedders the collection loads itself (given ones keep theirs)."""
    max_text_chars: int = MAX_TEXT_CHARS
    """Longest document text an upsert accepts (the server sets its own limit)."""
    auto_tune: bool = True
    """Whether upserts refit the self-tuned fusion when it is due (``fusion="auto"``, see
    :func:`omniretrieve.index.tuning.self_tune.tuning_due`)."""
    schedule_tuning: Callable[[], None] | None = None
    """Set (the server's tuning queue): an upsert that makes a refit due hands it to this
    instead of fitting before it returns."""
    should_stop: Callable[[], bool] = never
    """Asked between batches of an upsert (and of its embedding): True stops it with
    :class:`ShuttingDownError`, the batches acknowledged so far kept (server shutdown)."""


@dataclass(frozen=True)
class BatchPlan:
    entries: list[dict[str, Any]]
    """WAL entries that need no embedding (metadata-only updates)."""
    to_embed: list[StoredDocument]
    counts: tuple[int, int, int]
    """Added, updated, unchanged."""
    versions: tuple[int, ...]
    """:meth:`DocumentIngest.stored_versions` when the batch was classified."""


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


class DocumentIngest:
    def __init__(
        self,
        name: str,
        settings: Callable[[], CollectionSettings],
        embedder: Callable[[str], IndexEmbedder],
        options: IngestOptions,
        files: StoredFiles | None = None,
    ) -> None:
        self._name = name
        self.files = files
        self._settings = settings
        self._embedder = embedder
        self.options = options
        self._ocr: Any = None

    def check(self, documents: Iterable[Any]) -> list[StoredDocument]:
        """Documents parsed and checked as an upsert takes them (ids unique, texts within
        :attr:`IngestOptions.max_text_chars`, metadata plain JSON): every one before any work,
        so a bad one changes nothing."""
        items = [
            parse_document(d, i, max_text_chars=self.options.max_text_chars)
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

    def upsert_batch(
        self,
        state: Callable[[], StoredState],
        batch: Sequence[StoredDocument],
        guard: Callable[[], AbstractContextManager[Any]],
        acknowledge: Callable[[dict[str, Any]], None],
    ) -> tuple[int, int, int, int]:
        """Classify a batch and acknowledge its record under ``guard``, embedding in between
        without it; a batch whose documents were written meanwhile is redone under the guard.
        Returns added, updated, unchanged and embedded passages."""
        with guard():
            self.stop_if_asked()
            plan = self.classify(state(), batch)
        entries, embedded = self.embed(plan.to_embed)
        with guard():
            if self.stored_versions(state(), batch) != plan.versions:
                plan = self.classify(state(), batch)
                entries, embedded = self.embed(plan.to_embed)
            record = {"op": "upsert", "documents": plan.entries + entries}
            if record["documents"]:
                acknowledge(record)
        return (*plan.counts, embedded)

    def stop_if_asked(self) -> None:
        if self.options.should_stop():
            raise ShuttingDownError(
                f"collection {self._name!r}: the upsert stopped for shutdown; batches "
                "acknowledged before it are stored, the rest are not (send them again: "
                "unchanged documents are skipped)"
            )

    @staticmethod
    def stored_versions(state: StoredState, batch: Sequence[StoredDocument]) -> tuple[int, ...]:
        """What each document's classification depended on, as stored now (its text, content
        hash and metadata; 0: absent). Compared by value, not by object: documents held by
        Milvus are read into a cache whose objects come and go."""
        prefetch(state.documents, [d.doc_id for d in batch])
        versions = []
        for document in batch:
            stored = state.documents.get(document.doc_id)
            if stored is None:
                versions.append(0)
                continue
            metadata = json.dumps(stored.metadata, sort_keys=True, ensure_ascii=False)
            versions.append(hash((stored.text, stored.content_hash, metadata)))
        return tuple(versions)

    def classify(self, state: StoredState, batch: Sequence[StoredDocument]) -> BatchPlan:
        """What a batch needs: new or changed texts to embed, metadata-only updates (their
        stored vectors kept), unchanged documents skipped."""
        entries: list[dict[str, Any]] = []
        to_embed: list[StoredDocument] = []
        added = updated = unchanged = 0
        prefetch(state.documents, [d.doc_id for d in batch])
        for document in batch:
            previous = state.documents.get(document.doc_id)
            if previous is None:
                added += 1
            elif previous.content_hash == document.content_hash:
                read_by_ocr = previous.metadata.get("ocr") is True
                if read_by_ocr:  # keep the text OCR added, and say so (and where it starts)
                    kept = {k: previous.metadata[k] for k in OCR_KEYS if k in previous.metadata}
                    document = replace(
                        document, text=previous.text, metadata={**document.metadata, **kept}
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
                    for name, per_doc in state.passages.items()
                    if document.doc_id in per_doc
                }
                entries.append({"document": document.to_json(), "vectors": vectors})
                continue
            else:
                updated += 1
            to_embed.append(document)
        return BatchPlan(
            entries, to_embed, (added, updated, unchanged), self.stored_versions(state, batch)
        )

    def embed(self, to_embed: list[StoredDocument]) -> tuple[list[dict[str, Any]], int]:
        """WAL entries (document + passage vectors per field) of documents to embed, and how
        many passages were embedded."""
        if not to_embed:
            return [], 0
        embedded = 0
        to_embed = self._read_images(to_embed)
        vectors_by_doc: dict[str, dict[str, Any]] = {d.doc_id: {} for d in to_embed}
        for model_id in self._settings().embedders:
            fields, passages = self.passage_fields(model_id, to_embed)
            for name, per_doc in fields.items():
                for doc_id, (spans, rows) in per_doc.items():
                    vectors_by_doc[doc_id][name] = {
                        "spans": [list(s) for s in spans],
                        "vectors": encode_vectors(rows),
                    }
            embedded += passages
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
        if not wanted or not self._settings().ocr_images:
            return documents
        reader = self.ocr_reader()
        images = {document.doc_id: self.image_bytes(document) for document in wanted}
        texts = dict(zip(images, reader.read_many(list(images.values())), strict=True))
        out = []
        for document in documents:
            if document.doc_id in texts:
                given = document.text.strip()
                combined = f"{given}\n{texts[document.doc_id]}".strip()
                metadata = {**document.metadata, "ocr": True, OCR_FROM: len(given)}
                document = replace(document, text=combined, metadata=metadata)
            out.append(document)
        return out

    def image_bytes(self, document: StoredDocument) -> bytes:
        """A document's image: one of the collection's stored files (an image, or a PDF's page
        drawn), inline (data URI or base64), or a local file when the collection allows paths
        (the library; never the server)."""
        source = str(document.image)
        stored = parse_ref(source)
        if stored is not None:
            if self.files is None:
                raise InputError(f"{document.doc_id}.image: no stored files here", field="image")
            return self.files.image(stored)
        if self.options.image_paths and not source.startswith("data:"):
            path = _local_file(source.split("#page=")[0])
            if path is not None:
                return path.read_bytes()
        return decode_image_bytes(source, field=f"{document.doc_id}.image")

    def ocr_reader(self) -> Any:
        if self._ocr is None:
            self._ocr = OcrReader(self._settings().ocr_engine)
        return self._ocr

    def passage_fields(
        self, model_id: str, documents: Sequence[StoredDocument]
    ) -> tuple[Fields, int]:
        """Every field a model gives these documents (split and embedded as an upsert
        would; nothing is stored): field name -> document id -> (its rows' spans, its rows);
        and how many passages were embedded."""
        outputs = model_outputs(self._embedder(model_id))
        if outputs != ("dense",):
            return self.passage_outputs(model_id, documents, outputs)
        spans_by_doc, vectors = self.passage_vectors(model_id, documents)
        per_doc, row = {}, 0
        for doc_id, spans in spans_by_doc.items():
            per_doc[doc_id] = (spans, vectors[row : row + len(spans)])
            row += len(spans)
        return {field_name(model_id): per_doc}, row

    def passage_outputs(
        self, model_id: str, documents: Sequence[StoredDocument], outputs: tuple[str, ...]
    ) -> tuple[Fields, int]:
        """A model with learned-sparse or multi-vector outputs: every field it gives, per
        document (:mod:`~omniretrieve.index.field_outputs`), from one pass per chunk of
        passages; and how many passages were embedded."""
        if self._settings().storage == "milvus":
            raise InputError(
                f"model {model_id!r} gives {' and '.join(o for o in outputs if o != 'dense')} "
                'fields, which a collection with storage="milvus" cannot hold: use '
                'storage="folder" (with vector_store="milvus" if wanted)',
                field="embedders",
            )
        embedder = self._embedder(model_id)
        spans_by_doc, inputs = self._passage_inputs(model_id, embedder, documents)
        step = int(getattr(embedder, "preferred_chunk", EMBED_CHUNK))
        found = embed_passages(
            embedder, inputs, outputs, chunk=step, before_chunk=self.stop_if_asked
        )
        return field_entries(model_id, outputs, spans_by_doc, found), len(inputs)

    def _passage_inputs(
        self, model_id: str, embedder: IndexEmbedder, documents: Sequence[StoredDocument]
    ) -> tuple[dict[str, list[tuple[int, int]]], list[Any]]:
        """Per document, its passages' spans (its image last, for a model that reads images),
        and every passage's input in that order."""
        reads_images = "image" in embedder.modalities
        spans_by_doc: dict[str, list[tuple[int, int]]] = {}
        inputs: list[Any] = []
        for document in documents:
            with_image = reads_images and bool(document.image)
            self._check_readable(document, model_id, with_image)
            spans = self._text_spans(document, embedder) if document.text.strip() else []
            inputs.extend(document.text[a:b] for a, b in spans)
            if with_image:
                spans = [*spans, IMAGE_SPAN]
                inputs.append(ImageInput(self.image_bytes(document)))
            spans_by_doc[document.doc_id] = spans
        return spans_by_doc, inputs

    @staticmethod
    def _check_readable(document: StoredDocument, model_id: str, with_image: bool) -> None:
        if not document.text.strip() and not with_image:
            raise InputError(
                f"document {document.doc_id!r} has no text and model {model_id!r} takes text only",
                field="documents",
            )

    def passage_vectors(
        self, model_id: str, documents: Sequence[StoredDocument]
    ) -> tuple[dict[str, list[tuple[int, int]]], np.ndarray]:
        """Per document, its passages' spans, and their vectors in document order. A model that
        reads images also embeds a document's image, as one more passage (span
        :data:`IMAGE_SPAN`)."""
        embedder = self._embedder(model_id)
        spans_by_doc, inputs = self._passage_inputs(model_id, embedder, documents)
        texts = [i for i in inputs if isinstance(i, str)]
        images = [i for i in inputs if not isinstance(i, str)]
        text_vectors = np.zeros((0, embedder.dimension), dtype=np.float32)
        if texts:
            blocks = []
            # an embedder on a pool of workers takes a chunk per worker at once
            step = int(getattr(embedder, "preferred_chunk", EMBED_CHUNK))
            for start in range(0, len(texts), step):
                self.stop_if_asked()
                chunk = texts[start : start + step]
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

    def _text_spans(
        self, document: StoredDocument, embedder: IndexEmbedder
    ) -> list[tuple[int, int]]:
        if self._settings().passages == "first":
            return [(0, len(document.text))]
        return passage_spans(
            document.text,
            embedder.token_offsets,
            max_tokens=embedder.max_length,
            overlap=self._settings().passage_overlap,
            boundaries=definition_starts(document.text, language_of(document.metadata)),
        )


def _local_file(source: str) -> Path | None:
    """``source`` as an existing local file, or None (inline base64 longer than a file name
    can be is not one: the system refuses to look it up)."""
    try:
        path = Path(source)
        return path if path.is_file() else None
    except OSError:
        return None
