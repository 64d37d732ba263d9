"""The server's open collections: opened on first use, one lock each, closed at shutdown.

A collection is not thread-safe, and its writes fsync: every call runs in a worker thread under
that collection's lock, so the event loop never waits on disk or on the model.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from omniretrieve.embedder import Embedder
from omniretrieve.errors import CollectionNotFoundError, InputError
from omniretrieve.index.collection import Collection, CollectionSettings
from omniretrieve.reranker import Reranker
from omniretrieve.server.pool import ModelPool


class CollectionManager:
    def __init__(self, pool: ModelPool, root: Path | None) -> None:
        self.pool = pool
        self.root = root
        self._open: dict[str, tuple[Collection, threading.Lock]] = {}
        self._guard = threading.Lock()

    def _models(self) -> dict[str, Any]:
        embedders = {
            mid: Embedder.wrap(m.model, languages=m.languages)
            for mid, m in self.pool.embedders.items()
        }
        rerankers = {mid: Reranker.wrap(m.model) for mid, m in self.pool.rerankers.items()}
        return {"embedders": embedders, "rerankers": rerankers}

    def names(self) -> list[str]:
        return Collection.list(self.root)

    def create(self, name: str, settings: CollectionSettings) -> Collection:
        missing = [e for e in settings.embedders if e not in self.pool.embedders]
        if missing:
            raise InputError(
                f"embedder(s) {missing} are not loaded; loaded: {list(self.pool.embedders)}",
                field="embedders",
            )
        with self._guard:
            collection = Collection.create(
                name, root=self.root, settings=settings, **self._models()
            )
            collection.image_paths = False  # a client may not make the server read its files
            self._open[name] = (collection, threading.Lock())
        return collection

    def get(self, name: str) -> tuple[Collection, threading.Lock]:
        with self._guard:
            if name not in self._open:
                collection = Collection.open(name, root=self.root, **self._models())
                collection.image_paths = False
                missing = [e for e in collection.settings.embedders if e not in self.pool.embedders]
                if missing:
                    collection.close()
                    raise InputError(
                        f"collection {name!r} was built with {missing}, which this server has "
                        "not loaded (start it with --model ...)",
                        field="name",
                    )
                self._open[name] = (collection, threading.Lock())
            return self._open[name]

    def drop(self, name: str) -> None:
        with self._guard:
            entry = self._open.pop(name, None)
            if entry is not None:
                with entry[1]:
                    entry[0].close()
            if name not in Collection.list(self.root):
                raise CollectionNotFoundError(f"collection {name!r} does not exist", field="name")
            Collection.drop(name, root=self.root)

    def close(self) -> None:
        with self._guard:
            for collection, lock in self._open.values():
                with lock:
                    collection.flush()
                    collection.close()
            self._open.clear()
