"""Reading a collection's documents (mixed into
:class:`~omniretrieve.index.collection.Collection`): one by id, a page of them in id order,
all of them, their stored vectors, spans and pictures."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.index.milvus_documents import prefetch
from omniretrieve.index.settings import CollectionSettings, field_name
from omniretrieve.index.store import StoredDocument, StoredState

MAX_PAGE = 1000
"""The most documents one page of :meth:`CollectionDocuments.list_documents` holds."""
SCAN_CHUNK = 256


@dataclass(frozen=True)
class DocumentPage:
    total: int
    offset: int
    documents: list[StoredDocument]


class CollectionDocuments:
    _state: StoredState
    _ingest: Any
    settings: CollectionSettings

    def get(self, doc_id: str) -> StoredDocument | None:
        return self._state.documents.get(doc_id)

    def document_ids(self) -> list[str]:
        return list(self._state.documents)

    def list_documents(self, offset: int = 0, limit: int = 100) -> DocumentPage:
        """Documents in id order, ``limit`` (at most :data:`MAX_PAGE`) from ``offset``."""
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InputError("offset must be a non-negative integer", field="offset")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InputError(f"limit must be an integer from 1 to {MAX_PAGE}", field="limit")
        ids = sorted(self._state.documents)
        chosen = ids[offset : offset + limit]
        prefetch(self._state.documents, chosen)
        documents = [self._state.documents[d] for d in chosen]
        return DocumentPage(len(ids), offset, documents)

    def iter_documents(self) -> Iterator[StoredDocument]:
        """Every document, in id order (read in chunks where Milvus holds them)."""
        ids = sorted(self._state.documents)
        for start in range(0, len(ids), SCAN_CHUNK):
            chunk = ids[start : start + SCAN_CHUNK]
            prefetch(self._state.documents, chunk)
            for doc_id in chunk:
                document = self._state.documents.get(doc_id)
                if document is not None:
                    yield document

    def vectors(self, doc_id: str, model_id: str | None = None) -> np.ndarray | None:
        """The passage vectors stored for a document (for checks and exports)."""
        name = field_name(model_id or self.settings.embedders[0])
        entry = self._state.passages.get(name, {}).get(doc_id)
        return None if entry is None else entry[1]

    def spans(self, doc_id: str, model_id: str | None = None) -> list[tuple[int, int]] | None:
        """The character spans of a document's passages for an embedder (the first)."""
        name = field_name(model_id or self.settings.embedders[0])
        entry = self._state.passages.get(name, {}).get(doc_id)
        return None if entry is None else entry[0]

    def document_image(self, document: StoredDocument) -> bytes:
        """A stored document's image bytes: one of the collection's stored files (a PDF's page
        drawn), inline data, or a file where the collection's options allow paths (the
        library; never the server)."""
        return self._ingest.image_bytes(document)
