"""What Milvus must hold, where Milvus alone holds a collection's documents
(``storage="milvus"``), recorded in the collection's folder and checked at every open.

Milvus holds the only copy of such documents, so a removed or emptied database, a damaged
segment or a ``collection.json`` edited back to ``storage: folder`` would otherwise open as an
empty (or thinner) collection, and a writer would go on writing into it. The ledger makes that
loss loud:

- ``held.json`` in the folder and a ledger row in Milvus's documents collection both record
  the acknowledged writes Milvus holds: how many (``sequence``), a digest chained over them
  (each write's WAL record, in order), and how many documents that leaves (``documents``).
- Each time the WAL is emptied (Milvus confirmed every acknowledged write) the row is written
  first, then the file: a crash in between leaves the row ahead by writes the WAL still holds
  (replayed on the next open), never behind.
- At open the row must be there and agree with the file (the same writes and digest, or ahead
  by at most the WAL's writes), and Milvus must hold as many documents as the file says.
  Otherwise the open is refused with a :class:`CollectionFormatError` naming what is missing;
  ``repair=True`` accepts what Milvus holds and records it anew (only on that request).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omniretrieve.errors import CollectionFormatError, OmniRetrieveError

LEDGER_FILE = "held.json"
GENESIS = hashlib.sha256(b"omniretrieve held documents").hexdigest()


def chained(digest: str, record: Any) -> str:
    """The digest after one more acknowledged write (its WAL record)."""
    body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((digest + body).encode("utf-8", "surrogatepass")).hexdigest()


class HeldLedger:
    """The ledger of one collection: its file, its Milvus row (``rows``: a
    :class:`~omniretrieve.index.milvus_documents.MilvusDocumentRows`), and the writes
    acknowledged since it was last settled."""

    def __init__(self, directory: Path, rows: Any) -> None:
        self.path = directory / LEDGER_FILE
        self.rows = rows
        self.sequence, self.documents, self.digest = 0, 0, GENESIS
        self._unsettled: list[Any] = []
        self._delta = 0
        self._recount = False
        """Replayed writes are unsettled: what they added is read from Milvus at settling."""

    # -- the file -----------------------------------------------------------------------
    def read_file(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, RecursionError) as exc:
            raise CollectionFormatError(
                f"{self.path} is unreadable ({type(exc).__name__}); it records what Milvus "
                "must hold for this collection: restore it from a backup"
            ) from exc
        if not _valid(data):
            raise CollectionFormatError(
                f"{self.path} is damaged (expected sequence, documents and digest); restore "
                "it from a backup"
            )
        return dict(data)

    def _write_file(self) -> None:
        from omniretrieve.index.snapshots import write_atomic

        write_atomic(self.path, json.dumps(self.state(), indent=2).encode())

    def state(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "documents": self.documents, "digest": self.digest}

    # -- opening ------------------------------------------------------------------------
    def check(
        self,
        wal_records: list[Any],
        fields: list[str],
        *,
        repair: bool = False,
        writable: bool,
    ) -> None:
        """Compare the file, Milvus's row and Milvus's documents (see the module; ``fields``:
        the other Milvus collections the documents need); ``repair`` accepts what Milvus
        holds (a writer records it)."""
        recorded = self.read_file()
        held = self.rows.read_ledger()
        if recorded is None and held is None:
            # made before ledgers existed: adopt what Milvus holds (recorded at the next settle)
            self.documents = self.rows.count()
            if writable:
                self._adopt()
            return
        if repair:
            self.documents = self.rows.count()
            if recorded is not None:
                self.sequence, self.digest = recorded["sequence"], recorded["digest"]
            if writable:
                self._adopt()
            return
        if recorded is None:
            raise CollectionFormatError(
                f"{self.path} is missing, but Milvus holds this collection's documents; restore "
                "the file, or open with repair=True (omniretrieve collections repair) to accept "
                "what Milvus holds"
            )
        self.sequence, self.documents, self.digest = (
            recorded["sequence"],
            recorded["documents"],
            recorded["digest"],
        )
        if held is None and self.sequence == 0 and self.documents == 0:
            if writable:  # nothing was ever acknowledged: nothing can be missing
                self._adopt()
            return
        try:
            self._compare(held, wal_records, fields, racing=False)
        except CollectionFormatError:
            if writable or not writer_active(self.path.parent):
                raise
            # a reader beside a writer may read the file, the WAL, the row and the count at
            # different moments of its writes: only what no write in progress explains counts
            self._compare(held, wal_records, fields, racing=True)
        # the WAL's writes (a crash before it was emptied; the row may already count them)
        # are replayed by the open and recorded when they settle
        self._unsettled = list(wal_records)
        self._recount = bool(wal_records)

    def _compare(
        self, held: Any, wal_records: list[Any], fields: list[str], *, racing: bool
    ) -> None:
        """The checks of :meth:`check` against Milvus's row and data (``racing``: a writer is
        at work, so Milvus may be ahead of what this reader read, and counts move)."""
        where = f"Milvus ({self.rows.milvus.uri})"
        advice = (
            "restore Milvus's data from a backup, or open with repair=True (omniretrieve "
            "collections repair) to accept what Milvus holds; nothing was changed"
        )
        if held is None:
            raise CollectionFormatError(
                f"{where} holds none of this collection's documents, but {self.path} records "
                f"{self.documents} documents over {self.sequence} acknowledged writes (its data "
                f"was removed or emptied): {advice}"
            )
        if not _valid(held):
            raise CollectionFormatError(
                f"{where}: this collection's ledger row is damaged; {advice}"
            )
        ahead = held["sequence"] - self.sequence
        beyond = ahead > len(wal_records) and not racing
        if ahead < 0 or beyond or (ahead == 0 and held["digest"] != self.digest):
            raise CollectionFormatError(
                f"{where} holds writes up to #{held['sequence']}, but {self.path} records "
                f"#{self.sequence} acknowledged (its data is older than, or not, this "
                f"collection's): {advice}"
            )
        lost = self.rows.milvus.missing(fields) if self.documents else []
        if lost:
            raise CollectionFormatError(
                f"{where} no longer has this collection's {', '.join(lost)} (its rows were "
                f"removed): {advice}"
            )
        if ahead == 0 and not wal_records and not racing:  # writes to replay: Milvus may hold some
            counted = self.rows.count()
            if counted != self.documents:
                raise CollectionFormatError(
                    f"{where} holds {counted} of this collection's documents, but {self.path} "
                    f"records {self.documents} (rows were lost, or written by something "
                    f"else): {advice}"
                )

    def _adopt(self) -> None:
        self.rows.write_ledger(self.state())
        self._write_file()

    # -- writing ------------------------------------------------------------------------
    def wrote(self, record: Any, documents_delta: int) -> None:
        """One more write acknowledged (its WAL record; how it changes the count)."""
        self._unsettled.append(record)
        self._delta += documents_delta

    def settle(self) -> None:
        """Milvus holds every acknowledged write: record them (row, then file). After a
        replay the count is read from Milvus (what replayed writes added is not known)."""
        if not self._unsettled:
            return
        for record in self._unsettled:
            self.digest = chained(self.digest, record)
        self.sequence += len(self._unsettled)
        self.documents = self.rows.count() if self._recount else self.documents + self._delta
        self._unsettled, self._delta, self._recount = [], 0, False
        self.rows.write_ledger(self.state())
        self._write_file()


def _valid(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("sequence"), int)
        and isinstance(data.get("documents"), int)
        and isinstance(data.get("digest"), str)
        and data["sequence"] >= 0
        and data["documents"] >= 0
    )


def open_ledger(store: Any, vectors: Any, *, repair: bool, writable: bool) -> HeldLedger | None:
    """The ledger of a collection whose documents Milvus alone holds, checked (None for the
    other collections, which must not have one: a ``collection.json`` edited from
    ``storage: milvus`` to ``folder`` would open empty)."""
    from omniretrieve.index.milvus_documents import HeldState
    from omniretrieve.index.milvus_store import BM25_FIELD

    state = vectors.new_state()
    if not isinstance(state, HeldState):
        if (store.directory / LEDGER_FILE).exists():
            raise CollectionFormatError(
                f"{store.directory / LEDGER_FILE} says Milvus holds this collection's documents, "
                f"but {store.settings_path} says storage is not milvus (edited?); restore "
                "storage: milvus there"
            )
        return None
    ledger = HeldLedger(store.directory, state.held_documents.rows)
    fields = list(state.held_fields)
    if vectors.bm25() is not None:
        fields.append(BM25_FIELD)
    records = [record for _, record in store.wal_records()]
    try:
        ledger.check(records, fields, repair=repair, writable=writable)
    except OmniRetrieveError:
        raise
    except Exception as exc:  # Milvus cannot read its own files (damaged)
        raise CollectionFormatError(
            f"Milvus ({ledger.rows.milvus.uri}) cannot read this collection's data "
            f"({type(exc).__name__}: {str(exc)[:300]}); restore it from a backup, or open with "
            "repair=True (omniretrieve collections repair) to accept what it can still read"
        ) from exc
    return ledger


def check_held_files(directory: Path, settings: Any) -> None:
    """Before connecting to Milvus Lite (which would create an empty database in place of a
    missing one): a collection whose ledger records documents needs its database."""
    if settings.storage != "milvus" or settings.milvus_uri:
        return
    ledger = directory / LEDGER_FILE
    if ledger.exists() and not (directory / "milvus.db").exists():
        raise CollectionFormatError(
            f"{directory / 'milvus.db'} is missing, but {ledger} says Milvus Lite there holds "
            "this collection's documents: restore it from a backup, or open with repair=True "
            "(omniretrieve collections repair) to start again from an empty store"
        )


def settle_held_wal(state: Any, store: Any, ledger: HeldLedger | None) -> None:
    """Documents held by Milvus: once Milvus holds every acknowledged write (an insert Milvus
    answered is durable there), they are recorded in the ledger and the WAL has nothing left
    to replay (other collections: nothing to do)."""
    from omniretrieve.index.milvus_documents import HeldState

    if isinstance(state, HeldState) and store.wal_bytes() > 0:
        upserted, deleted = state.unsettled()
        if not upserted and not deleted:
            if ledger is not None:
                ledger.settle()
            store.reset_wal()


def writer_active(directory: Path) -> bool:
    """Whether a writer holds the collection's lock now (asked only when a reader's checks
    failed: a shared lock taken and dropped at once)."""
    import fcntl

    try:
        handle = open(directory / "LOCK", "rb")  # noqa: SIM115 (closed below)
    except OSError:  # no writer ever opened it
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
