"""The collections under a root directory: listing them and dropping one."""

from __future__ import annotations

import shutil
from pathlib import Path

from omniretrieve.errors import CollectionNotFoundError, closest_name
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


def missing_collection(name: str, root: Path | None = None) -> CollectionNotFoundError:
    """The error for a collection that does not exist: a close name if there is one, else
    the names there are."""
    names = collection_names(root)
    close = closest_name(name, names)
    if close:
        hint = f"; did you mean {close!r}?"
    elif names:
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        hint = f"; there are: {shown}"
    else:
        hint = "; there is none yet (create one with `omniretrieve index NAME --from PATH`)"
    return CollectionNotFoundError(f"collection {name!r} does not exist{hint}", field="name")


def drop_collection(name: str, root: Path | None = None) -> None:
    """Delete collection ``name`` and its files (and its Milvus collection, if any); never one
    that another process is writing (its lock is taken first)."""
    check_name(name)
    directory = (root or default_root()) / name
    if not (directory / "collection.json").is_file():
        raise missing_collection(name, root)
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
