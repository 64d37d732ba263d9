"""Ways the Milvus data of a collection whose documents Milvus alone holds gets lost or
damaged (issue 28, item 5), for the test and ``benchmarks/fault_test.py``. Each takes the
collection's folder; ``older`` is a copy of its ``milvus.db`` taken before its last writes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path


def lite(folder: Path) -> Path:
    return folder / "milvus.db"


def documents(folder: Path) -> Path:
    return next((lite(folder) / "collections").glob("*____documents__"))


def vectors(folder: Path) -> Path:
    return next(p for p in (lite(folder) / "collections").iterdir() if "__dense_" in p.name)


def flip(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x10
    path.write_bytes(bytes(data))


def edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def emptied(folder: Path) -> None:
    shutil.rmtree(lite(folder))
    lite(folder).mkdir()


def replaced_by_older(folder: Path) -> None:
    shutil.rmtree(lite(folder))
    shutil.copytree(folder.parent / "older-milvus.db", lite(folder))


MILVUS_DAMAGES: dict[str, Callable[[Path], None]] = {  # refused at open
    "milvus.db removed": lambda f: shutil.rmtree(lite(f)),
    "milvus.db emptied": emptied,
    "milvus.db replaced by an older copy": replaced_by_older,
    "documents collection removed": lambda f: shutil.rmtree(documents(f)),
    "documents manifest.json garbage": lambda f: (documents(f) / "manifest.json").write_text(
        "{garbage"
    ),
    "documents manifest.json removed": lambda f: (documents(f) / "manifest.json").unlink(),
    "documents data parquet removed": lambda f: next(
        (documents(f) / "partitions").rglob("data_*.parquet")
    ).unlink(),
    "documents delta parquet removed": lambda f: next(
        (documents(f) / "partitions").rglob("delta_*.parquet")
    ).unlink(),
    "vector collection removed": lambda f: shutil.rmtree(vectors(f)),
    "documents manifest.json and its .prev garbage": lambda f: [
        (documents(f) / name).write_text("[]") for name in ("manifest.json", "manifest.json.prev")
    ],
    "BM25 collection removed": lambda f: shutil.rmtree(
        next((lite(f) / "collections").glob("*____bm25__"))
    ),
    "collection.json storage edited to folder": lambda f: edit_json(
        f / "collection.json", storage="folder"
    ),
    "held.json removed": lambda f: (f / "held.json").unlink(),
    "held.json garbage": lambda f: (f / "held.json").write_text("{garbage"),
    "held.json sequence lowered": lambda f: edit_json(f / "held.json", sequence=1),
    "held.json documents changed": lambda f: edit_json(f / "held.json", documents=7),
    "held.json digest changed": lambda f: edit_json(f / "held.json", digest="0" * 64),
}

READ_DAMAGES: dict[str, Callable[[Path], None]] = {
    # found when the damaged document is read (the open does not read every document)
    "documents data parquet bit flipped": lambda f: flip(
        next((documents(f) / "partitions").rglob("data_*.parquet"))
    ),
}
UNDETECTED = (
    "a flipped bit inside a stored vector's float: Milvus keeps no checksums, and the value "
    "is still a float (a score changes slightly)"
)
