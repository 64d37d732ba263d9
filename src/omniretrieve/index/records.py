"""A collection's data model: documents, per vector field the passages' spans and vectors,
and the WAL operations that change them (:func:`apply`, the same for live writes and replay).
Every wrongly shaped value raises ``ValueError`` before the state changes."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OCR_FROM = "ocr_from"
"""Metadata: where, in ``text``, the text OCR read in the document's image starts."""


@dataclass
class StoredDocument:
    doc_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    image: str | None = None
    content_hash: str = ""

    @property
    def given_text(self) -> str:
        """The text the document was given with, without what OCR read in its image (OCR text
        is an index artifact: rerankers that read images get the image instead). Pages whose
        whole text is OCR's have none; collections written before ``ocr_from`` was recorded
        give their whole text (where OCR's text starts is unknown there)."""
        if self.metadata.get("ocr") is not True:
            return self.text
        start = self.metadata.get(OCR_FROM)
        if isinstance(start, int) and 0 <= start <= len(self.text):
            return self.text[:start].strip()
        return "" if self.metadata.get("text_source") == "ocr" else self.text

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.doc_id, "text": self.text, "metadata": self.metadata}
        if self.image is not None:
            data["image"] = self.image
        data["hash"] = self.content_hash
        return data

    @classmethod
    def from_json(cls, data: Any) -> StoredDocument:
        """A stored document; a wrongly shaped one raises ``ValueError`` (the caller names
        the file and line)."""
        if not isinstance(data, dict):
            raise ValueError("a document is not a JSON object")
        document = cls(
            doc_id=data.get("id"),  # type: ignore[arg-type]
            text=data.get("text", ""),
            metadata=data.get("metadata") or {},
            image=data.get("image"),
            content_hash=data.get("hash", ""),
        )
        if not isinstance(document.doc_id, str) or not document.doc_id:
            raise ValueError(f"document id {document.doc_id!r} is not a non-empty string")
        if not isinstance(document.text, str) or not isinstance(document.content_hash, str):
            raise ValueError(f"document {document.doc_id!r}: text or hash is not a string")
        if not isinstance(document.metadata, dict):
            raise ValueError(f"document {document.doc_id!r}: metadata is not an object")
        if document.image is not None and not isinstance(document.image, str):
            raise ValueError(f"document {document.doc_id!r}: image is not a string")
        return document


@dataclass
class StoredState:
    """Documents and, per vector field, the passages' owners, spans and vectors."""

    documents: dict[str, StoredDocument] = field(default_factory=dict)
    passages: dict[str, dict[str, tuple[list[tuple[int, int]], np.ndarray]]] = field(
        default_factory=dict
    )
    """field -> doc id -> (character spans, (n_passages, dim) float32 vectors)."""


def encode_vectors(vectors: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(vectors, dtype="<f4")
    return {"shape": list(array.shape), "b64": base64.b64encode(array.tobytes()).decode("ascii")}


def decode_vectors(data: Any) -> np.ndarray:
    """The (rows, dim) float32 matrix of :func:`encode_vectors`; ``ValueError`` when the
    base64 or the shape is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("b64"), str):
        raise ValueError("vectors are not {shape, b64}")
    shape = data.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise ValueError(f"vector shape {shape!r} is not [rows, dim]")
    try:
        raw = base64.b64decode(data["b64"], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"vectors are not valid base64 ({exc})") from exc
    if len(raw) != 4 * shape[0] * shape[1]:
        raise ValueError(f"{len(raw)} bytes of vectors do not make shape {shape}")
    return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)


def parse_spans(value: Any) -> list[tuple[int, int]]:
    if not isinstance(value, list) or not all(
        isinstance(s, list | tuple) and len(s) == 2 and all(type(n) is int for n in s)
        for s in value
    ):
        raise ValueError(f"passage spans {str(value)[:80]} are not [[start, end], ...]")
    return [(int(a), int(b)) for a, b in value]


def apply(state: StoredState, operation: Any) -> None:
    """Apply one WAL operation to ``state`` (used for live writes and for replay alike). A
    wrongly shaped operation raises ``ValueError`` before ``state`` changes."""
    if not isinstance(operation, dict):
        raise ValueError("an operation is not a JSON object")
    kind = operation.get("op")
    if kind == "upsert":
        items = operation.get("documents")
        if not isinstance(items, list):
            raise ValueError("upsert without a list of documents")
        parsed = []
        for item in items:
            if not isinstance(item, dict):
                raise ValueError("an upserted entry is not an object")
            document = StoredDocument.from_json(item.get("document"))
            fields = item.get("vectors", {})
            if not isinstance(fields, dict):
                raise ValueError(f"document {document.doc_id!r}: vectors are not an object")
            passages = {}
            for field_name, entry in fields.items():
                if not isinstance(entry, dict):
                    raise ValueError(f"document {document.doc_id!r}: {field_name} is not an object")
                spans = parse_spans(entry.get("spans"))
                vectors = decode_vectors(entry.get("vectors"))
                if len(spans) != len(vectors):
                    raise ValueError(
                        f"document {document.doc_id!r}: {len(spans)} spans but "
                        f"{len(vectors)} vectors in {field_name}"
                    )
                passages[field_name] = (spans, vectors)
            parsed.append((document, passages))
        for document, passages in parsed:
            state.documents[document.doc_id] = document
            for field_name, entry in passages.items():
                state.passages.setdefault(field_name, {})[document.doc_id] = entry
    elif kind == "delete":
        ids = operation.get("ids")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValueError("delete without a list of string ids")
        for doc_id in ids:
            state.documents.pop(doc_id, None)
            for per_doc in state.passages.values():
                per_doc.pop(doc_id, None)
    else:
        raise ValueError(f"unknown WAL operation {kind!r}")
