"""The server's open collections: opened on first use, one lock each, closed at shutdown.

A collection is not thread-safe, and its writes fsync: every call runs in the manager's own
worker threads (not the event loop's default pool, which token counting and image decoding
share) under that collection's lock, so the event loop never waits on disk or on the model.

At shutdown the manager first tells in-flight writes to stop at their next batch (what they
acknowledged stays), then flushes only the collections holding unflushed writes: a collection
that was only read is never rewritten, and one that fails to flush keeps its WAL and does not
stop the others from closing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from omniretrieve.embedder import Embedder
from omniretrieve.errors import CollectionNotFoundError, InputError
from omniretrieve.index.collection import Collection, CollectionSettings, UpsertReport
from omniretrieve.index.model_protocols import IndexEmbedder, IndexReranker
from omniretrieve.server.config import Limits
from omniretrieve.server.pool import ModelPool
from omniretrieve.server.tuning_queue import TuningQueue

log = logging.getLogger("omniretrieve.server")
T = TypeVar("T")
COLLECTION_THREADS = 4


@dataclass
class OpenCollection:
    collection: Collection
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    """Set (under ``lock``) when the collection is dropped or closed: a request that looked
    it up before must not use it."""

    @contextmanager
    def held(self) -> Iterator[Collection]:
        """The collection under its lock, unless it was dropped or closed since it was looked
        up (then it no longer exists for this request)."""
        with self.lock:
            if self.closed:
                raise CollectionNotFoundError(
                    f"collection {self.collection.name!r} does not exist", field="name"
                )
            yield self.collection


class CollectionManager:
    def __init__(self, pool: ModelPool, root: Path | None, limits: Limits | None = None) -> None:
        self.pool = pool
        self.root = root
        self.limits = limits or Limits()
        self.stopping = threading.Event()
        """Set at shutdown: long upserts stop at their next batch."""
        self.executor = ThreadPoolExecutor(COLLECTION_THREADS, thread_name_prefix="collection")
        self.tuning = TuningQueue()
        """Fits, in a thread of their own (never in :attr:`executor`)."""
        self._open: dict[str, OpenCollection] = {}
        self._guard = threading.Lock()

    def _embedders(self) -> dict[str, IndexEmbedder]:
        return {
            mid: Embedder.wrap(m.model, languages=m.languages)
            for mid, m in self.pool.embedders.items()
        }

    def _rerankers(self) -> dict[str, IndexReranker]:
        """The pool's rerankers, through their queues (batches shared with /v1/rerank)."""
        return dict(self.pool.rerankers)

    def _serve(self, collection: Collection) -> OpenCollection:
        collection.options.image_paths = False  # a client may not make the server read files
        collection.options.max_text_chars = self.limits.max_text_chars
        collection.options.should_stop = self.stopping.is_set
        entry = OpenCollection(collection)
        collection.options.schedule_tuning = lambda: self.tuning.refit(entry)
        return entry

    def names(self) -> list[str]:
        return Collection.names(self.root)

    def create(self, name: str, settings: CollectionSettings) -> Collection:
        missing = [e for e in settings.embedders if e not in self.pool.embedders]
        if missing:
            raise InputError(
                f"embedder(s) {missing} are not loaded; loaded: {list(self.pool.embedders)}",
                field="embedders",
            )
        with self._guard:
            collection = Collection.create(
                name,
                root=self.root,
                settings=settings,
                embedders=self._embedders(),
                rerankers=self._rerankers(),
            )
            self._open[name] = self._serve(collection)
        return collection

    def get(self, name: str) -> OpenCollection:
        with self._guard:
            if name not in self._open:
                collection = Collection.open(
                    name,
                    root=self.root,
                    embedders=self._embedders(),
                    rerankers=self._rerankers(),
                )
                missing = [e for e in collection.settings.embedders if e not in self.pool.embedders]
                if missing:
                    collection.close()
                    raise InputError(
                        f"collection {name!r} was built with {missing}, which this server has "
                        "not loaded (start it with --model ...)",
                        field="name",
                    )
                self._open[name] = self._serve(collection)
            return self._open[name]

    def run_on(self, entry: OpenCollection, work: Callable[[Collection], T]) -> T:
        """``work(collection)`` under the collection's lock (see :meth:`OpenCollection.held`)."""
        with entry.held() as collection:
            return work(collection)

    def run(self, name: str, work: Callable[[Collection], T]) -> T:
        return self.run_on(self.get(name), work)

    def upsert(self, name: str, documents: list[Any]) -> UpsertReport:
        """Upsert holding the collection's lock only per batch (to classify it and to
        acknowledge it): reads and searches are answered while its texts are embedded."""
        entry = self.get(name)
        return entry.collection.upsert(documents, batch_guard=entry.held)

    def drop(self, name: str) -> None:
        self.tuning.cancel(name)  # before the locks: a fit ends by taking its collection's
        with self._guard:
            entry = self._open.pop(name, None)
            if entry is not None:
                with entry.lock:
                    entry.closed = True
                    entry.collection.close()
            if name not in Collection.names(self.root):
                raise CollectionNotFoundError(f"collection {name!r} does not exist", field="name")
            Collection.drop(name, root=self.root)

    def close(self) -> None:
        """Stop in-flight writes at their next batch, flush what has unflushed writes, close
        everything; a failure is logged and does not keep the others open."""
        self.stopping.set()
        self.tuning.close()
        with self._guard:
            for name, entry in self._open.items():
                with entry.lock:
                    entry.closed = True
                    try:
                        if entry.collection.has_unflushed_writes:
                            entry.collection.flush()
                    except Exception as exc:  # keep closing the others; the WAL keeps the data
                        log.error(
                            "collection %s: flush at shutdown failed (%s: %s); its writes stay "
                            "in its WAL and are replayed when it is next opened",
                            name,
                            type(exc).__name__,
                            exc,
                        )
                    finally:
                        entry.collection.close()
            self._open.clear()
            # back to a fresh state: an app whose lifespan runs again (tests, embedding
            # servers) opens its collections anew on first use
            self.executor.shutdown(wait=False)
            self.executor = ThreadPoolExecutor(COLLECTION_THREADS, thread_name_prefix="collection")
            self.tuning = TuningQueue()
            self.stopping = threading.Event()
