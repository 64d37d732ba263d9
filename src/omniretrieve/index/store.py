"""A collection's files: versioned, crash-safe, one directory per collection.

Layout::

    <dir>/collection.json     format version and settings (written once, atomically)
    <dir>/CURRENT             name of the live snapshot directory (replaced atomically)
    <dir>/snap-<n>/           documents.jsonl + passages.json + <field>.npy vectors, and
                              manifest.json (counts, size and sha256 of every file), written
                              then renamed
    <dir>/wal.jsonl           operations since that snapshot, one JSON line each, fsynced
    <dir>/LOCK                held (flock) by the one writer

An operation is acknowledged only after its WAL line is fsynced. Opening replays the WAL over
the snapshot; a torn last line (the process died while writing it) was never acknowledged and is
dropped. A compaction writes a new snapshot beside the old one, fsyncs it, switches CURRENT, and
only then truncates the WAL, so a kill at any point leaves either the old or the new state
readable, never a mix.

Nothing damaged is read or overwritten: every open checks the snapshot against its manifest
(file sizes and sha256, document and passage-row counts) and validates each WAL line; any
mismatch is a :class:`CollectionFormatError` naming the file, raised before anything is
written, so no compaction can replace the damaged state with what survived of it.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.errors import OmniRetrieveError

FORMAT_VERSION = 2
"""2: snapshots carry a manifest. Version 1 collections (no manifest) still open, with the
snapshot's structure checked; their next compaction writes a manifest and version 2."""
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
SNAPSHOT_NAME = re.compile(r"snap-[0-9]{1,18}")


class CollectionFormatError(OmniRetrieveError):
    status_code = 500
    error_type = "collection_unreadable"


class CollectionLockedError(OmniRetrieveError):
    status_code = 409
    error_type = "collection_locked"


@dataclass
class StoredDocument:
    doc_id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    image: str | None = None
    content_hash: str = ""

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


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class CollectionStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock_handle: Any = None
        self._wal: Any = None
        self.format_version = FORMAT_VERSION

    # -- settings -----------------------------------------------------------------------
    @property
    def settings_path(self) -> Path:
        return self.directory / "collection.json"

    def create(self, settings: dict[str, Any]) -> None:
        """Make the directory with its settings in one rename: never a half-made collection."""
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        staging = self.directory.with_name(f".{self.directory.name}.creating-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        payload = {"format_version": FORMAT_VERSION, **settings}
        write_atomic(staging / "collection.json", json.dumps(payload, indent=2).encode())
        try:
            os.rename(staging, self.directory)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise FileExistsError(f"{self.directory} already exists") from exc
        fsync_dir(self.directory.parent)

    def write_settings(self, settings: dict[str, Any]) -> None:
        """Replace the settings (atomically: readers see the old or the new file)."""
        payload = {"format_version": FORMAT_VERSION, **settings}
        write_atomic(self.settings_path, json.dumps(payload, indent=2).encode())

    def read_settings(self) -> dict[str, Any]:
        try:
            settings = json.loads(self.settings_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CollectionFormatError(
                f"{self.directory} is not a collection (no collection.json)"
            ) from exc
        except (OSError, ValueError) as exc:
            raise CollectionFormatError(
                f"{self.settings_path} is unreadable ({exc}); the collection was not modified"
            ) from exc
        if not isinstance(settings, dict):
            raise CollectionFormatError(
                f"{self.settings_path} is not a JSON object; the collection was not modified"
            )
        version = settings.get("format_version")
        if version not in READABLE_VERSIONS:
            raise CollectionFormatError(
                f"{self.settings_path} has format version {version!r}; this omniretrieve reads "
                f"versions {', '.join(map(str, READABLE_VERSIONS))}. Open it with the version "
                "that wrote it, or re-index"
            )
        self.format_version = version
        return settings

    # -- locking ------------------------------------------------------------------------
    def lock(self) -> None:
        handle = open(self.directory / "LOCK", "a+")  # noqa: SIM115 (held until close)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise CollectionLockedError(
                f"{self.directory} is open for writing by another process"
            ) from exc
        self._lock_handle = handle

    def close(self) -> None:
        if self._wal is not None:
            self._wal.close()
            self._wal = None
        if self._lock_handle is not None:
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    # -- reading ------------------------------------------------------------------------
    def current_snapshot(self) -> Path | None:
        pointer = self.directory / "CURRENT"
        if not pointer.exists():
            return None
        name = pointer.read_text(encoding="utf-8").strip()
        if not SNAPSHOT_NAME.fullmatch(name):
            raise CollectionFormatError(
                f"{pointer} is damaged (it names {name[:40]!r}, not a snapshot); nothing was "
                "read or overwritten"
            )
        path = self.directory / name
        if not path.is_dir():
            raise CollectionFormatError(f"{self.directory}: CURRENT names {name}, which is missing")
        return path

    def load(self) -> StoredState:
        state = StoredState()
        snapshot = self.current_snapshot()
        if snapshot is not None:
            self._read_snapshot(snapshot, state)
        path = self.directory / "wal.jsonl"
        for number, operation in self._wal_records():
            try:
                apply(state, operation)
            except (ValueError, KeyError, TypeError, CollectionFormatError) as exc:
                message = exc.message if isinstance(exc, CollectionFormatError) else str(exc)
                raise CollectionFormatError(
                    f"{path}: line {number} is damaged ({message}); nothing was read or "
                    "overwritten (restore the file from a backup, or remove the line)"
                ) from exc
        return state

    def load_consistent(self, attempts: int = 50) -> StoredState:
        """Load without the lock, while a writer may be appending or compacting: the WAL's
        torn tail is ignored (not cut), and a compaction that switched ``CURRENT`` during the
        read (its old snapshot may be gone, its WAL emptied) is answered by reading again."""
        for _ in range(attempts):
            before = self.current_name()
            try:
                state = self.load()
            except CollectionFormatError:
                if self.current_name() != before:
                    continue
                raise
            if self.current_name() == before:
                return state
        raise CollectionFormatError(
            f"{self.directory} kept changing while being read ({attempts} attempts)"
        )

    def current_name(self) -> str | None:
        try:
            return (self.directory / "CURRENT").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None

    def version(self) -> tuple[str | None, int]:
        """Changes whenever a write is acknowledged (WAL grows) or a compaction lands."""
        return self.current_name(), self.wal_bytes()

    def _read_snapshot(self, snapshot: Path, state: StoredState) -> None:
        """Read a snapshot after checking it against its manifest; any damage (a cut, emptied
        or changed file, a missing or extra one, counts that disagree) raises
        :class:`CollectionFormatError` naming the file."""
        manifest = self._check_manifest(snapshot)
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

    def _check_manifest(self, snapshot: Path) -> dict[str, Any] | None:
        """The snapshot's manifest, after checking every file's size and sha256 against it.
        None for a snapshot of a version 1 collection (written before manifests)."""
        path = snapshot / MANIFEST
        if not path.exists():
            if self._settings_version() == 1:
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
                    f"has {target.stat().st_size} bytes; {MANIFEST} recorded "
                    f"{expected.get('bytes')}"
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

    def _settings_version(self) -> Any:
        try:
            return json.loads(self.settings_path.read_text(encoding="utf-8")).get("format_version")
        except (OSError, ValueError, AttributeError):
            return None

    def _wal_records(self) -> Iterator[tuple[int, Any]]:
        """The WAL's operations with their line numbers. A torn last line (the writer died
        mid-line: never acknowledged) is cut off the file, so the next append starts on a
        clean line."""
        path = self.directory / "wal.jsonl"
        if not path.exists():
            return
        data = path.read_bytes()
        lines = data.split(b"\n")
        offset = 0
        for number, line in enumerate(lines):
            is_last = number == len(lines) - 1  # no newline after it: possibly torn
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    if is_last:
                        self._cut_wal(path, offset)
                        return
                    raise CollectionFormatError(
                        f"{path}: line {number + 1} is damaged (not JSON); nothing was read "
                        "or overwritten"
                    ) from exc
                if is_last:  # complete JSON but no newline: the fsync may not have happened
                    self._cut_wal(path, offset)
                    return
                yield number + 1, record
            offset += len(line) + 1

    def _cut_wal(self, path: Path, length: int) -> None:
        if self._lock_handle is None:
            return  # a reader never changes files
        with open(path, "r+b") as handle:
            handle.truncate(length)
            handle.flush()
            os.fsync(handle.fileno())

    # -- writing ------------------------------------------------------------------------
    def append(self, operation: dict[str, Any]) -> None:
        """Append one operation to the WAL and fsync it (the acknowledgement point)."""
        if self._wal is None:
            self._wal = open(self.directory / "wal.jsonl", "ab")  # noqa: SIM115
        self._wal.write(json.dumps(operation, separators=(",", ":")).encode() + b"\n")
        self._wal.flush()
        os.fsync(self._wal.fileno())

    def wal_bytes(self) -> int:
        try:
            return (self.directory / "wal.jsonl").stat().st_size
        except FileNotFoundError:
            return 0

    def compact(self, state: StoredState) -> None:
        """Write ``state`` as a new snapshot, switch to it, then empty the WAL."""
        previous = self.current_snapshot()
        number = int(previous.name.split("-")[1]) + 1 if previous is not None else 1
        target = self.directory / f"snap-{number}"
        staging = self.directory / f"snap-{number}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
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
        fsync_dir(staging)
        if target.exists():  # left by a crash before CURRENT was switched: not live, replace it
            shutil.rmtree(target)
        os.replace(staging, target)
        fsync_dir(self.directory)
        write_atomic(self.directory / "CURRENT", target.name.encode())
        if self._wal is not None:
            self._wal.close()
            self._wal = None
        write_atomic(self.directory / "wal.jsonl", b"")
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
        if self._settings_version() == 1:  # its snapshot now has a manifest: say so
            settings = json.loads(self.settings_path.read_text(encoding="utf-8"))
            settings["format_version"] = FORMAT_VERSION
            write_atomic(self.settings_path, json.dumps(settings, indent=2).encode())


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
