"""Content hashes: of a list of texts (embedding caches) and of a document (upserts skip
unchanged documents). One module, so that every layer hashes the same way."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def texts_hash(texts: Sequence[str]) -> str:
    """sha256 over texts (length-prefixed so that boundaries count)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def document_hash(text: str, image: str | None) -> str:
    """sha256 of a document's text and image reference (as stored since format 1)."""
    digest = hashlib.sha256(text.encode("utf-8"))
    digest.update(b"\0" + (image or "").encode("utf-8"))
    return digest.hexdigest()
