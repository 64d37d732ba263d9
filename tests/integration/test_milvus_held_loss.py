"""Lost or damaged Milvus data is never silent where Milvus alone holds the documents (issue
28, item 5): every damage refuses the open (writer and reader) with a CollectionFormatError
naming what is missing, changes none of the folder's files and recreates nothing; once the
damage is undone everything acknowledged is there; ``repair=True`` accepts what Milvus holds
only when asked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from omniretrieve import Embedder
from omniretrieve.errors import CollectionFormatError
from omniretrieve.index.collection import Collection, CollectionSettings
from tests.builders.milvus_damage import MILVUS_DAMAGES, READ_DAMAGES

pytest.importorskip("milvus_lite")
pytestmark = pytest.mark.slow

DOCS = [{"id": f"d{i}", "text": f"document {i} about cats and the sea"} for i in range(20)]
KEPT = {f"d{i}" for i in range(20) if i not in (3, 4)} | {f"late{i}" for i in range(5)}
FILES = ("collection.json", "held.json", "wal.jsonl")


def built_settings(model: str) -> CollectionSettings:
    return CollectionSettings(
        embedders=(model,), vector_store="milvus", sparse="milvus", storage="milvus"
    )  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path):
    """A held collection written in two sessions, and a copy of its Milvus data between."""
    root = tmp_path_factory.mktemp("held") / "root"
    model = str(tiny_bert_dir)
    embedders = {model: Embedder(tiny_bert_dir)}
    with Collection.create(
        "h", root=root, settings=built_settings(model), embedders=embedders
    ) as collection:
        collection.upsert(DOCS)
    shutil.copytree(root / "h" / "milvus.db", root / "older-milvus.db")
    with Collection.open("h", root=root, embedders=embedders) as collection:
        collection.delete(["d3", "d4"])
        collection.upsert([{"id": f"late{i}", "text": f"late document {i}"} for i in range(5)])
        assert set(collection.document_ids()) == KEPT
    return root, embedders


def files(folder: Path) -> dict[str, bytes | None]:
    return {n: (folder / n).read_bytes() if (folder / n).exists() else None for n in FILES}


@pytest.mark.parametrize("damage", sorted(MILVUS_DAMAGES))
def test_damaged_milvus_data_refuses_the_open(tmp_path: Path, pristine, damage: str) -> None:
    source, embedders = pristine
    root = tmp_path / "root"
    shutil.copytree(source, root)
    folder = root / "h"
    MILVUS_DAMAGES[damage](folder)
    before = files(folder)
    had_db = (folder / "milvus.db").exists()
    for read_only in (False, True):
        with pytest.raises(CollectionFormatError) as refused:
            Collection.open("h", root=root, embedders=embedders, read_only=read_only)
        assert str(folder) in str(refused.value) or "Milvus" in str(refused.value)
    assert files(folder) == before  # nothing written
    assert (folder / "milvus.db").exists() == had_db  # nothing recreated
    # undone: everything acknowledged is there
    shutil.rmtree(folder)
    shutil.copytree(source / "h", folder)
    with Collection.open("h", root=root, embedders=embedders) as collection:
        assert set(collection.document_ids()) == KEPT
        assert collection.search("cats", top_k=3, mode="hybrid")


def test_repair_accepts_what_milvus_holds_only_when_asked(tmp_path: Path, pristine) -> None:
    source, embedders = pristine
    root = tmp_path / "root"
    shutil.copytree(source, root)
    MILVUS_DAMAGES["milvus.db removed"](root / "h")
    with pytest.raises(CollectionFormatError, match="repair"):
        Collection.open("h", root=root, embedders=embedders)
    with Collection.open("h", root=root, embedders=embedders, repair=True) as collection:
        assert len(collection) == 0  # the loss, accepted and recorded
        collection.upsert(DOCS[:2])
    with Collection.open("h", root=root, embedders=embedders, read_only=True) as collection:
        assert sorted(collection.document_ids()) == ["d0", "d1"]


@pytest.mark.parametrize("damage", sorted(READ_DAMAGES))
def test_a_damaged_document_row_is_a_clear_error_when_read(
    tmp_path: Path, pristine, damage: str
) -> None:
    source, embedders = pristine
    root = tmp_path / "root"
    shutil.copytree(source, root)
    READ_DAMAGES[damage](root / "h")
    with Collection.open("h", root=root, embedders=embedders, read_only=True) as collection:
        with pytest.raises(CollectionFormatError, match="damaged row"):
            for doc_id in collection.document_ids():
                collection.get(doc_id)


def test_the_cli_says_what_is_missing_and_repairs_on_request(tmp_path: Path, pristine) -> None:
    import json
    import subprocess
    import sys

    source, _ = pristine
    root = tmp_path / "root"
    shutil.copytree(source, root)
    MILVUS_DAMAGES["milvus.db emptied"](root / "h")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "omniretrieve.cli", *args, "--root", str(root)]
        return subprocess.run(command, capture_output=True, text=True, timeout=300)

    refused = cli("search", "h", "cats")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert "holds none of this collection's documents" in refused.stderr
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1
    unreadable = tmp_path / "unreadable"
    shutil.copytree(source, unreadable)
    MILVUS_DAMAGES["documents manifest.json and its .prev garbage"](unreadable / "h")
    command = ["search", "h", "cats", "--root", str(unreadable)]
    done = subprocess.run(
        [sys.executable, "-m", "omniretrieve.cli", *command], capture_output=True, text=True
    )
    assert done.returncode == 1 and done.stderr.startswith("error: "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # no pymilvus or Lite log lines
    repaired = cli("collections", "repair", "h")
    assert repaired.returncode == 0, repaired.stderr
    assert json.loads(repaired.stdout) == {"collection": "h", "documents": 0}


def test_filters_with_control_characters_on_milvus(tmp_path: Path, tiny_bert_dir: Path) -> None:
    """Issue 28, item 8: Milvus expressions have no \\u escapes; a filter value or key with
    any control character finds its document (it was a 500)."""
    model = str(tiny_bert_dir)
    values = [f"x{chr(i)}y" for i in [*range(1, 32), 127]] + ['q"u\\o']
    docs = [
        {"id": f"c{i}", "text": f"control document {i}", "metadata": {"k": v, "k\ty": v}}
        for i, v in enumerate(values)
    ]
    with Collection.create(
        "f",
        root=tmp_path,
        settings=built_settings(model),
        embedders={model: Embedder(tiny_bert_dir)},
    ) as collection:
        collection.upsert(docs)
        for i, value in enumerate(values):
            for key in ("k", "k\ty"):
                for mode in ("sparse", "dense"):
                    hits = collection.search("control document", mode=mode, filter={key: value})
                    assert [h.doc_id for h in hits] == [f"c{i}"], (repr(value), key, mode)


def test_a_reader_beside_a_writer_is_not_refused_for_writes_in_progress(
    tmp_path: Path, pristine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader may see Milvus ahead of the ledger while a writer works (here: documents
    pushed, ledger not yet written); with the writer gone, the same state is refused."""
    from omniretrieve.index.held_ledger import HeldLedger

    source, embedders = pristine
    root = tmp_path / "root"
    shutil.copytree(source, root)
    monkeypatch.setattr(HeldLedger, "settle", lambda self: None)  # the writer stops before it
    writer = Collection.open("h", root=root, embedders=embedders)
    writer.upsert([{"id": "new", "text": "a document the ledger does not know yet"}])
    with Collection.open("h", root=root, embedders=embedders, read_only=True) as reader:
        assert "new" in reader.document_ids()
    writer.close()
    with pytest.raises(CollectionFormatError, match="rows were lost"):
        Collection.open("h", root=root, embedders=embedders, read_only=True)
