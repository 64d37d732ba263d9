"""What goes into a collection: document parsing and validation, and the ingest sources
(BEIR corpus JSONL, a folder of text, Markdown and code files)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from omniretrieve.checks import check_json_value, check_text
from omniretrieve.errors import InputError, LimitExceededError
from omniretrieve.hashing import document_hash
from omniretrieve.index.store import StoredDocument
from omniretrieve.ingest.file_documents import TEXT_SUFFIXES
from omniretrieve.ingest.files import SkippedFile, folder_files
from omniretrieve.ingest.text_files import decode_text
from omniretrieve.jsonl import read_jsonl

MAX_ID_BYTES = 1000
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise InputError(
            f"collection name {name!r} must be 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field="name",
        )


def parse_document(value: Any, index: int, *, max_text_chars: int | None = None) -> StoredDocument:
    """A document checked so that it can always be stored and read back: id, text, title and
    image valid Unicode, metadata plain JSON (finite numbers, string keys, bounded nesting),
    text within ``max_text_chars`` (title and text together)."""
    field = f"documents[{index}]"
    if isinstance(value, StoredDocument):
        value = value.to_json()
    if not isinstance(value, Mapping):
        raise InputError(f"{field} must be an object with 'id' and 'text'", field=field)
    doc_id = value.get("id", value.get("_id"))
    if not isinstance(doc_id, str | int) or isinstance(doc_id, bool) or str(doc_id) == "":
        raise InputError(f"{field} needs a non-empty string 'id'", field=f"{field}.id")
    doc_id = str(doc_id)
    check_text(doc_id, f"{field}.id")
    if any(ord(c) < 32 or ord(c) == 127 for c in doc_id):
        raise InputError(f"{field}.id contains control characters", field=f"{field}.id")
    if len(doc_id.encode("utf-8")) > MAX_ID_BYTES:
        raise InputError(
            f"{field}.id is longer than {MAX_ID_BYTES} bytes of UTF-8", field=f"{field}.id"
        )
    text = value.get("text") or ""
    title = value.get("title") or ""
    if not isinstance(text, str) or not isinstance(title, str):
        raise InputError(f"{field}.text must be a string", field=f"{field}.text")
    image = value.get("image")
    if image is not None and not isinstance(image, str):
        raise InputError(f"{field}.image must be a string", field=f"{field}.image")
    for name, part in (("text", text), ("title", title), ("image", image or "")):
        check_text(part, f"{field}.{name}")
    full_text = f"{title} {text}".strip() if title else text
    if max_text_chars is not None and len(full_text) > max_text_chars:
        raise LimitExceededError(
            f"{field}.text holds {len(full_text)} characters; the limit is {max_text_chars} "
            "characters per document (split it, or raise the limit)",
            field=f"{field}.text",
        )
    if not full_text.strip() and not image:
        raise InputError(f"{field} has neither text nor image", field=field)
    metadata = value.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise InputError(f"{field}.metadata must be an object", field=f"{field}.metadata")
    check_json_value(metadata, f"{field}.metadata")
    return StoredDocument(
        doc_id=doc_id,
        text=full_text,
        metadata=dict(metadata),
        image=image,
        content_hash=document_hash(full_text, image),
    )


def iter_jsonl_documents(path: Path) -> Iterator[dict[str, Any]]:
    """BEIR corpus lines (``_id``, ``title``, ``text``, optional ``metadata``); a malformed
    line is an error naming the file and line."""
    for _, record in read_jsonl(path):
        yield record


def iter_folder_documents(
    folder: Path,
    *,
    skipped: list[SkippedFile] | None = None,
    follow_symlinks: bool = False,
    max_chars: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Text, Markdown and code files under ``folder``; the id is the relative path. A file
    that is not UTF-8 (reported with the offset of its first bad byte), longer than
    ``max_chars`` characters (sized before it is read), or a symlink out of the folder is
    added to ``skipped`` (an error when no list is given) and the walk goes on."""
    report: list[SkippedFile] = [] if skipped is None else skipped

    def wanted(path: Path) -> bool:
        return path.suffix.lower() in TEXT_SUFFIXES

    for path in folder_files(folder, wanted, skipped=report, follow_symlinks=follow_symlinks):
        relative = str(path.relative_to(folder))
        text, problem = _read_text_file(path, max_chars)
        if problem is not None:
            if skipped is None:
                raise InputError(f"{path}: {problem}", field="file")
            report.append(SkippedFile(relative, problem))
            continue
        if text.strip():
            yield {
                "id": relative,
                "text": text,
                "metadata": {"path": relative, "suffix": path.suffix.lower()},
            }
    if skipped is None and report:
        raise InputError(f"{report[0].path}: {report[0].error}", field="file")


def _read_text_file(path: Path, max_chars: int | None) -> tuple[str, str | None]:
    """A file's text, or why it cannot be indexed. A file over 4 bytes per allowed character
    is refused unread, so one huge file never fills the memory."""
    if max_chars is not None and path.stat().st_size > 4 * max_chars:
        return "", (
            f"{path.stat().st_size} bytes: over the limit of {max_chars} characters "
            "(--max-chars to raise it)"
        )
    try:
        text = decode_text(path.read_bytes(), suffix=path.suffix.lower(), label="the file").text
    except InputError as exc:
        return "", exc.message
    if max_chars is not None and len(text) > max_chars:
        return "", (
            f"holds {len(text)} characters: over the limit of {max_chars} characters "
            "(--max-chars to raise it)"
        )
    return text, None
