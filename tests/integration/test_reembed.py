"""``collections reembed``: a collection moved to another embedder (a fine-tuned one) keeps
its documents, searches with the new vectors only, and a crash before the switch leaves it
as it was."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from omniretrieve import Embedder
from omniretrieve.cli import app
from omniretrieve.index.collection import Collection, CollectionSettings, field_name
from omniretrieve.index.store import CollectionStore
from tests.builders.tiny_bert import build_tiny_bert

DOCUMENTS = [
    {"id": "cats", "text": "cats eat fish"},
    {"id": "dogs", "text": "dogs eat bones"},
    {"id": "stock", "text": "the stock market fell"},
    {"id": "tower", "text": "the tower is in paris"},
]


@pytest.fixture()
def models(tmp_path: Path) -> tuple[str, str]:
    old = build_tiny_bert(tmp_path / "old", seed=0, max_seq_length=32)
    new = build_tiny_bert(tmp_path / "new", seed=1, max_seq_length=32)
    return str(old), str(new)


def _collection(root: Path, embedder: str) -> None:
    settings = CollectionSettings(embedders=(embedder,))
    with Collection.create("notes", root=root, settings=settings) as collection:
        collection.options.dtype = "float32"
        collection.upsert(DOCUMENTS)


def test_reembed_moves_the_collection_to_the_new_model(
    tmp_path: Path, models: tuple[str, str]
) -> None:
    old, new = models
    root = tmp_path / "collections"
    _collection(root, old)
    result = CliRunner().invoke(
        app,
        ["collections", "reembed", "notes", "--embedder", new, "--root", str(root), "--dtype",
         "float32"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replaced"] == old and report["embedder"] == new and report["documents"] == 4

    with Collection.open("notes", root=root, read_only=True) as collection:
        assert collection.settings.embedders == (new,)
        assert set(collection.state().passages) == {field_name(new)}  # the old field is gone
        embedder = Embedder(new, dtype="float32")
        for document in DOCUMENTS:
            expected = embedder.encode_texts([document["text"]], task="retrieval.passage")
            stored = collection.vectors(document["id"])
            assert stored is not None
            np.testing.assert_allclose(stored, expected, atol=1e-5)
        hits = collection.search("cats eat fish", mode="dense", top_k=4)
        query = embedder.encode_texts(["cats eat fish"], task="retrieval.query")[0]
        for hit in hits:
            text = next(d["text"] for d in DOCUMENTS if d["id"] == hit.doc_id)
            vector = embedder.encode_texts([text], task="retrieval.passage")[0]
            assert hit.score == pytest.approx(float(query @ vector), abs=1e-4)


def test_a_crash_before_the_switch_leaves_the_collection_as_it_was(
    tmp_path: Path, models: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = models
    root = tmp_path / "collections"
    _collection(root, old)

    def crash(self: CollectionStore, settings: dict) -> None:
        raise KeyboardInterrupt  # the process dies before the settings are replaced

    monkeypatch.setattr(CollectionStore, "write_settings", crash)
    collection = Collection.open("notes", root=root)
    collection.options.dtype = "float32"
    with pytest.raises(KeyboardInterrupt):
        collection.reembed(new)
    collection.close()
    monkeypatch.undo()

    with Collection.open("notes", root=root) as reopened:  # for writing: the stray field goes
        assert reopened.settings.embedders == (old,)
        assert set(reopened.state().passages) == {field_name(old)}
        assert reopened.search("dogs eat bones", mode="dense", top_k=1)[0].doc_id == "dogs"
        reopened.options.dtype = "float32"
        report = reopened.reembed(new)  # and it can be moved again
    assert report.embedder == new


def test_reembed_refuses_what_it_cannot_do(tmp_path: Path, models: tuple[str, str]) -> None:
    old, new = models
    root = tmp_path / "collections"
    _collection(root, old)
    runner = CliRunner()
    same = runner.invoke(
        app, ["collections", "reembed", "notes", "--embedder", old, "--root", str(root)]
    )
    assert same.exit_code == 2 and "already embeds with" in same.output
    wrong = runner.invoke(
        app,
        ["collections", "reembed", "notes", "--embedder", new, "--replace", "x", "--root",
         str(root)],
    )  # fmt: skip
    assert wrong.exit_code == 2 and "does not embed with 'x'" in wrong.output
