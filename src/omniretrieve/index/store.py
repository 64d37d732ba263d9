"""A collection's files: versioned, crash-safe, one directory per collection.

Layout::

    <dir>/collection.json     format version and settings (written once, atomically)
    <dir>/CURRENT             name of the live snapshot directory (replaced atomically)
    <dir>/snap-<n>/           documents.jsonl + <field>.npy vectors, written then renamed
    <dir>/wal.jsonl           operations since that snapshot, one JSON line each, fsynced
    <dir>/LOCK                held (flock) by the one writer

An operation is acknowledged only after its WAL line is fsynced. Opening replays the WAL over
the snapshot; a torn last line (the process died while writing it) was never acknowledged and is
dropped. A compaction writes a new snapshot beside the old one, fsyncs it, switches CURRENT, and
only then truncates the WAL, so a kill at any point leaves either the old or the new state
readable, never a mix.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.errors import OmniRetrieveError

FORMAT_VERSION = 1


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
    def from_json(cls, data: dict[str, Any]) -> StoredDocument:
        return cls(
            doc_id=data["id"],
            text=data.get("text", ""),
            metadata=data.get("metadata") or {},
            image=data.get("image"),
            content_hash=data.get("hash", ""),
        )


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


def decode_vectors(data: dict[str, Any]) -> np.ndarray:
    raw = base64.b64decode(data["b64"])
    return np.frombuffer(raw, dtype="<f4").reshape(data["shape"]).astype(np.float32)


class CollectionStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock_handle: Any = None
        self._wal: Any = None

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
        version = settings.get("format_version")
        if version != FORMAT_VERSION:
            raise CollectionFormatError(
                f"{self.directory} has format version {version!r}; this omniretrieve reads "
                f"version {FORMAT_VERSION}. Open it with the version that wrote it, or re-index"
            )
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
        path = self.directory / name
        if not path.is_dir():
            raise CollectionFormatError(f"{self.directory}: CURRENT names {name}, which is missing")
        return path

    def load(self) -> StoredState:
        state = StoredState()
        snapshot = self.current_snapshot()
        if snapshot is not None:
            self._read_snapshot(snapshot, state)
        for operation in self._wal_records():
            apply(state, operation)
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
        try:
            with open(snapshot / "documents.jsonl", encoding="utf-8") as handle:
                for line in handle:
                    document = StoredDocument.from_json(json.loads(line))
                    state.documents[document.doc_id] = document
            manifest = json.loads((snapshot / "passages.json").read_text(encoding="utf-8"))
            for field_name, entries in manifest.items():
                vectors = np.load(snapshot / f"{field_name}.npy")
                per_doc: dict[str, tuple[list[tuple[int, int]], np.ndarray]] = {}
                row = 0
                for doc_id, spans in entries:
                    count = len(spans)
                    per_doc[doc_id] = ([tuple(s) for s in spans], vectors[row : row + count])
                    row += count
                state.passages[field_name] = per_doc
        except (OSError, ValueError, KeyError) as exc:
            raise CollectionFormatError(
                f"{snapshot} is damaged ({type(exc).__name__}: {exc}); nothing was overwritten"
            ) from exc

    def _wal_records(self) -> Iterator[dict[str, Any]]:
        """The WAL's operations. A torn last line (the writer died mid-line: never
        acknowledged) is cut off the file, so the next append starts on a clean line."""
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
                        f"{path}: line {number + 1} is damaged; nothing was overwritten"
                    ) from exc
                if is_last:  # complete JSON but no newline: the fsync may not have happened
                    self._cut_wal(path, offset)
                    return
                yield record
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


def apply(state: StoredState, operation: dict[str, Any]) -> None:
    """Apply one WAL operation to ``state`` (used for live writes and for replay alike)."""
    kind = operation.get("op")
    if kind == "upsert":
        for item in operation["documents"]:
            document = StoredDocument.from_json(item["document"])
            state.documents[document.doc_id] = document
            for field_name, passages in item.get("vectors", {}).items():
                spans = [tuple(s) for s in passages["spans"]]
                state.passages.setdefault(field_name, {})[document.doc_id] = (
                    spans,
                    decode_vectors(passages["vectors"]),
                )
    elif kind == "delete":
        for doc_id in operation["ids"]:
            state.documents.pop(doc_id, None)
            for per_doc in state.passages.values():
                per_doc.pop(doc_id, None)
    else:
        raise CollectionFormatError(f"unknown WAL operation {kind!r}")
