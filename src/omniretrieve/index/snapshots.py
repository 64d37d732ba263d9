"""Snapshots: a collection's state written as files with a manifest (counts, size and sha256
of every file), and read back only after every file matches it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.errors import CollectionFormatError
from omniretrieve.index.records import StoredDocument, StoredState, parse_spans

MANIFEST = "manifest.json"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_snapshot(staging: Path, state: StoredState) -> None:
    """``state`` as files in ``staging`` (each fsynced), the manifest written last."""
    with open(staging / "documents.jsonl", "w", encoding="utf-8") as handle:
        for document in state.documents.values():
            handle.write(json.dumps(document.to_json(), ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    manifest: dict[str, list[Any]] = {}
    for field_name, per_doc in state.passages.items():
        entries, blocks = [], []
        for doc_id, (spans, vectors) in per_doc.items():
            entries.append([doc_id, [list(s) for s in spans]])
            blocks.append(vectors)
        manifest[field_name] = entries
        stacked = np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32)
        with open(staging / f"{field_name}.npy", "wb") as handle:
            np.save(handle, stacked)
            handle.flush()
            os.fsync(handle.fileno())
    write_atomic(staging / "passages.json", json.dumps(manifest).encode())
    files = {
        path.name: {"bytes": path.stat().st_size, "sha256": file_digest(path)}
        for path in sorted(staging.iterdir())
    }
    counts = {
        name: sum(len(spans) for spans, _ in per_doc.values())
        for name, per_doc in state.passages.items()
    }
    summary = {"documents": len(state.documents), "passage_rows": counts, "files": files}
    write_atomic(staging / MANIFEST, json.dumps(summary, indent=1).encode())


def read_snapshot(snapshot: Path, state: StoredState, *, legacy: bool) -> None:
    """Read a snapshot after checking it against its manifest; any damage (a cut, emptied
    or changed file, a missing or extra one, counts that disagree) raises
    :class:`CollectionFormatError` naming the file."""
    manifest = check_manifest(snapshot, legacy=legacy)
    where = snapshot / "documents.jsonl"
    try:
        with open(where, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                where = snapshot / f"documents.jsonl, line {number}"
                document = StoredDocument.from_json(json.loads(line))
                state.documents[document.doc_id] = document
        where = snapshot / "passages.json"
        entries_by_field = json.loads(where.read_text(encoding="utf-8"))
        if not isinstance(entries_by_field, dict):
            raise ValueError("not a JSON object")
        for field_name, entries in entries_by_field.items():
            where = snapshot / "passages.json"
            if not isinstance(entries, list):
                raise ValueError(f"field {field_name!r} is not a list")
            parsed = []
            for entry in entries:
                if not isinstance(entry, list) or len(entry) != 2:
                    raise ValueError(f"field {field_name!r}: an entry is not [id, spans]")
                doc_id, spans = entry[0], parse_spans(entry[1])
                if doc_id not in state.documents:
                    raise ValueError(f"passages of {doc_id!r}, a document it does not hold")
                parsed.append((doc_id, spans))
            where = snapshot / f"{field_name}.npy"
            vectors = np.load(where, allow_pickle=False)
            rows = sum(len(spans) for _, spans in parsed)
            if vectors.ndim != 2 or vectors.shape[0] != rows or vectors.dtype != np.float32:
                raise ValueError(
                    f"holds {vectors.shape} {vectors.dtype} vectors; passages.json "
                    f"lists {rows} passages"
                )
            per_doc: dict[str, tuple[list[tuple[int, int]], np.ndarray]] = {}
            row = 0
            for doc_id, spans in parsed:
                per_doc[doc_id] = (spans, vectors[row : row + len(spans)])
                row += len(spans)
            state.passages[field_name] = per_doc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CollectionFormatError(
            f"{where} is damaged ({type(exc).__name__}: {exc}); nothing was read or "
            "overwritten (restore the file from a backup, or re-index)"
        ) from exc
    if manifest is not None:
        counted = {
            name: sum(len(s) for s, _ in per.values()) for name, per in state.passages.items()
        }
        if len(state.documents) != manifest["documents"] or counted != manifest["passage_rows"]:
            raise CollectionFormatError(
                f"{snapshot / 'documents.jsonl'} holds {len(state.documents)} documents "
                f"and {counted} passage rows; {MANIFEST} recorded {manifest['documents']} "
                f"and {manifest['passage_rows']}; nothing was read or overwritten"
            )


def check_manifest(snapshot: Path, *, legacy: bool) -> dict[str, Any] | None:
    """The snapshot's manifest, after checking every file's size and sha256 against it.
    None for a snapshot of a ``legacy`` (format 1) collection, written before manifests."""
    path = snapshot / MANIFEST
    if not path.exists():
        if legacy:
            return None
        raise CollectionFormatError(
            f"{path} is missing: the snapshot cannot be checked; nothing was read or "
            "overwritten (restore it from a backup)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict) or not isinstance(manifest["documents"], int):
            raise ValueError("files or documents have the wrong type")
        if not isinstance(manifest["passage_rows"], dict):
            raise ValueError("passage_rows is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CollectionFormatError(
            f"{path} is damaged ({type(exc).__name__}: {exc}); nothing was read or overwritten"
        ) from exc
    present = {p.name for p in snapshot.iterdir() if p.name != MANIFEST}
    for name in sorted(present | set(files)):
        target = snapshot / name
        expected = files.get(name)
        if expected is None:
            problem = f"is not listed in {MANIFEST}"
        elif name not in present:
            problem = f"is missing (listed in {MANIFEST})"
        elif target.stat().st_size != expected.get("bytes"):
            problem = (
                f"has {target.stat().st_size} bytes; {MANIFEST} recorded {expected.get('bytes')}"
            )
        elif file_digest(target) != expected.get("sha256"):
            problem = f"does not match the sha256 recorded in {MANIFEST}"
        else:
            continue
        raise CollectionFormatError(
            f"{target} {problem}: the snapshot is damaged; nothing was read or "
            "overwritten (restore the file from a backup, or re-index)"
        )
    return manifest
