"""The collections under a root directory: listing them and dropping one."""

from __future__ import annotations

import shutil
from pathlib import Path

from omniretrieve.errors import CollectionNotFoundError
from omniretrieve.index.documents import check_name
from omniretrieve.index.settings import default_root, read_settings
from omniretrieve.index.store import CollectionFormatError, CollectionStore
from omniretrieve.index.vectors import drop_vector_store


def collection_names(root: Path | None = None) -> list[str]:
    """The collections under ``root`` (default: the user data directory)."""
    base = root or default_root()
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "collection.json").is_file())


def drop_collection(name: str, root: Path | None = None) -> None:
    """Delete collection ``name`` and its files (and its Milvus collection, if any); never one
    that another process is writing (its lock is taken first)."""
    check_name(name)
    directory = (root or default_root()) / name
    if not (directory / "collection.json").is_file():
        raise CollectionNotFoundError(f"collection {name!r} does not exist", field="name")
    store = CollectionStore(directory)
    store.lock()
    try:
        try:
            settings = read_settings(store)
        except CollectionFormatError:
            settings = None  # a damaged collection can still be dropped (its folder)
        if settings is not None:
            drop_vector_store(settings, name)
    finally:
        store.close()
    shutil.rmtree(directory)
