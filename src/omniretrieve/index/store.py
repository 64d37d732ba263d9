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

import fcntl
import json
import os
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from omniretrieve.errors import CollectionFormatError as CollectionFormatError
from omniretrieve.errors import CollectionLockedError as CollectionLockedError
from omniretrieve.index.records import StoredDocument as StoredDocument
from omniretrieve.index.records import StoredState as StoredState
from omniretrieve.index.records import apply as apply
from omniretrieve.index.records import decode_vectors as decode_vectors
from omniretrieve.index.records import encode_vectors as encode_vectors
from omniretrieve.index.records import parse_spans as parse_spans
from omniretrieve.index.snapshots import MANIFEST as MANIFEST
from omniretrieve.index.snapshots import fsync_dir, read_snapshot, write_atomic, write_snapshot

FORMAT_VERSION = 2
"""2: snapshots carry a manifest. Version 1 collections (no manifest) still open, with the
snapshot's structure checked; their next compaction writes a manifest and version 2."""
READABLE_VERSIONS = (1, 2)
SNAPSHOT_NAME = re.compile(r"snap-[0-9]{1,18}")


SERVER_URL_ENV = "OMNIRETRIEVE_SERVING_URL"
"""Set by ``omniretrieve serve`` in its own process: the URL written into the locks it holds."""


def lock_holder() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        # the program and its command only: options may hold secrets (--api-key)
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:2]]),
        "server": os.environ.get(SERVER_URL_ENV),
    }


def locked_message(directory: Path) -> str:
    """Who holds the collection in ``directory`` for writing, and what to do instead."""
    name = directory.name
    try:
        holder = json.loads((directory / "LOCK").read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        holder = {}
    pid = holder.get("pid")
    server = holder.get("server")
    if server:
        return (
            f"collection {name!r} is held by the server at {server} (pid {pid}): index through "
            f"it (omniretrieve index {name} --from PATH --server {server}, or PUT "
            f"{server}/v1/collections/{name}/documents), or stop the server first"
        )
    who = f"process {pid} ({holder.get('command')})" if pid else "another process"
    return f"collection {name!r} ({directory}) is open for writing by {who}"


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

    @property
    def tuning_path(self) -> Path:
        return self.directory / "tuning.json"

    def write_tuning(self, tuning: dict[str, Any]) -> None:
        """Replace the self-tuned fusion, atomically."""
        write_atomic(self.tuning_path, json.dumps(tuning, indent=2).encode())

    def read_tuning(self) -> dict[str, Any] | None:
        """The self-tuned fusion; None when there is none, or when the file cannot be read
        (with a warning: search falls back to equal weights, the file stays for inspection)."""
        try:
            data = json.loads(self.tuning_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: deep nesting
            self.warn_tuning_unread(f"{type(exc).__name__}: {exc}")
            return None
        if not isinstance(data, dict):
            self.warn_tuning_unread(f"it holds a {type(data).__name__}, not an object")
            return None
        return data

    def warn_tuning_unread(self, why: str) -> None:
        warnings.warn(
            f"{self.tuning_path} is not read ({why}); searching with equal fusion weights "
            "until the collection is tuned again (the file is left as it is)",
            stacklevel=3,
        )

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
        return settings

    # -- locking ------------------------------------------------------------------------
    def lock(self) -> None:
        """Take the collection's write lock and write who holds it into the lock file (the
        error another writer gets names the holder)."""
        handle = open(self.directory / "LOCK", "a+")  # noqa: SIM115 (held until close)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise CollectionLockedError(locked_message(self.directory)) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(lock_holder()))
        handle.flush()
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

    def load(self, new_state: Callable[[], StoredState] = StoredState) -> StoredState:
        """The snapshot with the WAL replayed over it, into ``new_state()`` (a collection
        whose documents live in Milvus has no snapshot: the WAL's unsettled writes only)."""
        state = new_state()
        snapshot = self.current_snapshot()
        if snapshot is not None:
            read_snapshot(snapshot, state, legacy=self._settings_version() == 1)
        path = self.directory / "wal.jsonl"
        for number, operation in self.wal_records():
            try:
                apply(state, operation)
            except ValueError as exc:  # apply() reports every wrongly shaped field so
                raise CollectionFormatError(
                    f"{path}: line {number} is damaged ({exc}); nothing was read or "
                    "overwritten (restore the file from a backup, or remove the line)"
                ) from exc
        return state

    def load_consistent(
        self, attempts: int = 50, new_state: Callable[[], StoredState] = StoredState
    ) -> StoredState:
        """Load without the lock, while a writer may be appending or compacting: the WAL's
        torn tail is ignored (not cut), and a compaction that switched ``CURRENT`` during the
        read (its old snapshot may be gone, its WAL emptied) is answered by reading again."""
        for _ in range(attempts):
            before = self.current_name()
            try:
                state = self.load(new_state)
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

    def tuning_stamp(self) -> int:
        """Changes whenever the self-tuned fusion is replaced (0: there is none)."""
        try:
            return self.tuning_path.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def _settings_version(self) -> Any:
        try:
            return json.loads(self.settings_path.read_text(encoding="utf-8")).get("format_version")
        except (OSError, ValueError, AttributeError):
            return None

    def wal_records(self) -> Iterator[tuple[int, Any]]:
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

    def reset_wal(self) -> None:
        """Empty the WAL (its writes are in a snapshot, or in Milvus for a collection whose
        documents live there)."""
        if self._wal is not None:
            self._wal.close()
            self._wal = None
        write_atomic(self.directory / "wal.jsonl", b"")

    def compact(self, state: StoredState) -> None:
        """Write ``state`` as a new snapshot, switch to it, then empty the WAL."""
        previous = self.current_snapshot()
        number = int(previous.name.split("-")[1]) + 1 if previous is not None else 1
        target = self.directory / f"snap-{number}"
        staging = self.directory / f"snap-{number}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        write_snapshot(staging, state)
        fsync_dir(staging)
        if target.exists():  # left by a crash before CURRENT was switched: not live, replace it
            shutil.rmtree(target)
        os.replace(staging, target)
        fsync_dir(self.directory)
        write_atomic(self.directory / "CURRENT", target.name.encode())
        self.reset_wal()
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
        if self._settings_version() == 1:  # its snapshot now has a manifest: say so
            settings = json.loads(self.settings_path.read_text(encoding="utf-8"))
            settings["format_version"] = FORMAT_VERSION
            write_atomic(self.settings_path, json.dumps(settings, indent=2).encode())
