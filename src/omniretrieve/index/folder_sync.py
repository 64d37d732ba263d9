"""A collection kept equal to a folder: ``index NAME --from DIR`` (and ``--watch``).

Documents made from a folder's files remember it (``metadata.folder``: the folder's resolved
path, ``metadata.sha256``: the file's content hash). A sync walks the folder, converts only
the files whose content changed (:mod:`~omniretrieve.ingest.file_documents`), upserts them, and
then removes the documents of this folder whose file is gone (or whose file now yields fewer
pages), unless asked to keep them. A file that is there but cannot be read keeps its
documents. Every step is an ordinary acknowledged write, so a sync cut short by a crash loses
nothing acknowledged and the next sync finishes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from omniretrieve.ingest.file_documents import (
    VISUAL_SUFFIXES,
    ConvertedFiles,
    FileConverter,
    FileNote,
    size_limit,
    wanted,
)
from omniretrieve.ingest.files import SkippedFile, folder_files
from omniretrieve.runtime.progress import progress_bar


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    embedded_passages: int = 0
    errors: list[FileNote] = field(default_factory=list)
    notes: list[FileNote] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "embedded_passages": self.embedded_passages,
            "skipped": skipped_json(self.errors, self.notes),
        }


def skipped_json(errors: list[FileNote], notes: list[FileNote]) -> list[dict[str, str]]:
    """What was not indexed, by path: ``error`` where a file could not be read, ``reason``
    where it had nothing to index."""
    items = [{"path": n.path, "error": n.message} for n in errors]
    items += [{"path": n.path, "reason": n.message} for n in notes]
    return sorted(items, key=lambda item: item["path"])


def folder_key(folder: Path) -> str:
    """How documents name the folder they came from: its resolved absolute path."""
    return str(folder.resolve())


def sync_folder(
    collection: Any,
    folder: Path,
    *,
    reader: Any,
    follow_symlinks: bool = False,
    max_chars: int | None = None,
    keep_missing: bool = False,
    show_progress: bool = False,
) -> SyncReport:
    """Make ``collection``'s documents from ``folder`` match the folder's files now."""
    key = folder_key(folder)
    report = SyncReport()
    walked: list[SkippedFile] = []
    paths = list(
        folder_files(
            folder, lambda p: wanted(p.name), skipped=walked, follow_symlinks=follow_symlinks
        )
    )
    report.errors += [FileNote(s.path, s.error) for s in walked]
    known = stored_from(collection, key)
    converter = FileConverter(
        reader=reader,
        store=collection.files.put,
        reads_images=partial(reads_images, collection),
        max_chars=max_chars,
        extra={"folder": key},
    )
    kept: set[str] = set()
    converted = ConvertedFiles()
    sizes = {path: _size(path) for path in paths}
    with progress_bar(
        sum(sizes.values()), f"reading {folder.name or key}", enabled=show_progress, unit="B"
    ) as step:
        for path in paths:
            relative = path.relative_to(folder).as_posix()
            before = known.get(relative, {})
            data = _read(path, relative, max_chars, report)
            if data is None:
                kept.update(before)  # there, but unreadable now: its documents stay
            elif before and set(before.values()) == {hashlib.sha256(data).hexdigest()}:
                kept.update(before)  # the same bytes: nothing to convert or embed
                report.unchanged += len(before)
            else:
                errors = len(converted.errors)
                converter.convert(relative, data, converted)
                if len(converted.errors) > errors:
                    kept.update(before)
            step(sizes[path])
        converter.finish()
    report.errors += converted.errors
    report.notes += converted.notes
    if converted.documents:
        upserted = collection.upsert(converted.documents, show_progress=show_progress)
        report.added += upserted.added
        report.updated += upserted.updated
        report.unchanged += upserted.unchanged
        report.embedded_passages += upserted.embedded_passages
    produced = kept | {d["id"] for d in converted.documents}
    stale = [doc_id for ids in known.values() for doc_id in ids if doc_id not in produced]
    if stale and not keep_missing:
        report.removed = collection.delete(stale)
    return report


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def stored_from(collection: Any, key: str) -> dict[str, dict[str, str | None]]:
    """The documents made from the folder ``key``: relative path -> {doc id: file sha256}."""
    known: dict[str, dict[str, str | None]] = {}
    for document in collection.iter_documents():
        metadata = document.metadata
        if metadata.get("folder") != key or not isinstance(metadata.get("path"), str):
            continue
        known.setdefault(metadata["path"], {})[document.doc_id] = metadata.get("sha256")
    return known


def reads_images(collection: Any) -> bool:
    return any("image" in collection.embedder(m).modalities for m in collection.settings.embedders)


def _read(path: Path, relative: str, max_chars: int | None, report: SyncReport) -> bytes | None:
    limit = size_limit(relative, max_chars)
    try:
        size = path.stat().st_size
        if limit is not None and size > limit:
            hint = "" if path.suffix.lower() in VISUAL_SUFFIXES else " (--max-chars to raise it)"
            message = f"{size} bytes: over the limit of {limit} bytes for this kind of file"
            report.errors.append(FileNote(relative, message + hint))
            return None
        return path.read_bytes()
    except OSError as exc:
        report.errors.append(FileNote(relative, f"cannot read: {exc}"))
        return None
