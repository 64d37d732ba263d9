"""Damaged collections are refused with a clear error, and nothing on disk is changed: a
snapshot carries a manifest checked on every open, WAL lines and settings are validated, and
what the library accepts can always be read back (issue 13, items 1-5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omniretrieve import Embedder
from omniretrieve.errors import InputError
from omniretrieve.index.collection import Collection, CollectionSettings
from omniretrieve.index.store import CollectionFormatError
from tests.builders.files import fingerprint

DOCS = [{"id": f"d{i}", "text": f"document number {i} about cats and dogs"} for i in range(10)]


@pytest.fixture()
def built(tmp_path: Path, tiny_bert_dir: Path):
    """A flushed collection of 10 documents (a snapshot, an empty WAL); the models."""
    model = str(tiny_bert_dir)
    embedders = {model: Embedder(tiny_bert_dir)}
    settings = CollectionSettings(embedders=(model,))
    with Collection.create("c", root=tmp_path, settings=settings, embedders=embedders) as coll:
        coll.upsert(DOCS)
        coll.flush()
    return tmp_path, embedders


def snapshot_dir(root: Path) -> Path:
    return root / "c" / (root / "c" / "CURRENT").read_text().strip()


def assert_refused(root: Path, embedders: dict, match: str) -> None:
    """Opening for writing and read-only both fail naming ``match``; no file changes."""
    before = fingerprint(root / "c")
    for read_only in (False, True):
        with pytest.raises(CollectionFormatError, match=match):
            Collection.open("c", root=root, embedders=embedders, read_only=read_only)
    assert fingerprint(root / "c") == before


def halve(path: Path) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[: len(lines) // 2]))


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda s: halve(s / "documents.jsonl"), "documents.jsonl"),
        (lambda s: (s / "documents.jsonl").write_bytes(b""), "documents.jsonl"),
        (lambda s: halve(s / "passages.json"), "passages.json"),
        (lambda s: flip_byte(next(s.glob("*.npy")), -5), r"\.npy"),
        (lambda s: (s / "manifest.json").unlink(), "manifest.json"),
        (lambda s: (s / "manifest.json").write_text("{}"), "manifest.json"),
    ],
    ids=[
        "half-documents",
        "empty-documents",
        "half-passages",
        "flipped-npy",
        "no-manifest",
        "bad-manifest",
    ],
)
def test_damaged_snapshot_is_refused_and_kept(built, damage, named) -> None:
    root, embedders = built
    damage(snapshot_dir(root))
    assert_refused(root, embedders, named)


def flip_byte(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def test_snapshot_manifest_counts_documents_and_rows(built) -> None:
    root, _ = built
    manifest = json.loads((snapshot_dir(root) / "manifest.json").read_text())
    assert manifest["documents"] == 10
    assert sum(manifest["passage_rows"].values()) >= 10
    assert set(manifest["files"]) >= {"documents.jsonl", "passages.json"}


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ({"op": "upsert", "documents": [{"document": {"text": "no id"}}]}, "line 1"),
        ({"op": "upsert", "documents": [{"document": {"id": 5, "text": "x"}}]}, "line 1"),
        (
            {
                "op": "upsert",
                "documents": [
                    {
                        "document": {"id": "v", "text": "x"},
                        "vectors": {
                            "f": {"spans": [[0, 1]], "vectors": {"shape": [1, 4], "b64": "@@@"}}
                        },
                    }
                ],
            },
            "line 1",
        ),
        (
            {
                "op": "upsert",
                "documents": [
                    {
                        "document": {"id": "v", "text": "x"},
                        "vectors": {
                            "f": {
                                "spans": [[0, 1]],
                                "vectors": {"shape": [3, 4], "b64": "AAAAAA=="},
                            }
                        },
                    }
                ],
            },
            "line 1",
        ),
        ({"op": "delete", "ids": "d1"}, "line 1"),
        ({"op": "rename"}, "line 1"),
        (["not", "an", "object"], "line 1"),
    ],
    ids=[
        "no-id",
        "int-id",
        "bad-base64",
        "wrong-shape",
        "ids-not-list",
        "unknown-op",
        "not-object",
    ],
)
def test_bad_wal_lines_are_refused(built, line, named) -> None:
    root, embedders = built
    (root / "c" / "wal.jsonl").write_text(json.dumps(line) + "\n")
    assert_refused(root, embedders, f"wal.jsonl.*{named}")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("embedders", 5),
        ("embedders", [1, 2]),
        ("rerank_candidates", "many"),
        ("fusion_weights", "ab"),
        ("passage_overlap", -3),
        ("hnsw_threshold", None),
        ("language", 7),
        ("language", "klingon"),
        ("ocr_images", "yes"),
    ],
)
def test_bad_settings_are_refused(built, key, value) -> None:
    root, embedders = built
    path = root / "c" / "collection.json"
    settings = json.loads(path.read_text())
    settings[key] = value
    path.write_text(json.dumps(settings))
    assert_refused(root, embedders, "collection.json")


def test_server_style_open_search_close_does_not_rewrite(built) -> None:
    """Opening and searching writes nothing; close without writes compacts nothing."""
    root, embedders = built
    before = fingerprint(root / "c")
    with Collection.open("c", root=root, embedders=embedders) as collection:
        collection.search("cats", mode="sparse")
        assert not collection.has_unflushed_writes
        collection.upsert(DOCS[:1])  # unchanged: no WAL line
        assert not collection.has_unflushed_writes
        collection.upsert([{"id": "new", "text": "a new text"}])
        assert collection.has_unflushed_writes
        collection.flush()
        assert not collection.has_unflushed_writes
    after = fingerprint(root / "c")
    assert after != before
    with Collection.open("c", root=root, embedders=embedders) as collection:
        collection.search("cats")
    assert fingerprint(root / "c") == after


@pytest.mark.parametrize("mode", ["sparse", "dense", "hybrid"])
def test_empty_collection_searches_return_no_hits(tmp_path, tiny_bert_dir, mode) -> None:
    model = str(tiny_bert_dir)
    embedders = {model: Embedder(tiny_bert_dir)}
    settings = CollectionSettings(embedders=(model,), reranker=model)
    with Collection.create("e", root=tmp_path, settings=settings, embedders=embedders) as coll:
        assert coll.search("anything", mode=mode) == []
        assert coll.search_many(["a", "b"], mode=mode) == [[], []]
        reader = Collection.open("e", root=tmp_path, embedders=embedders, read_only=True)
        assert reader.search("anything", mode=mode) == []
        reader.close()
        coll.upsert(DOCS[:2])
        assert coll.search("cats", mode=mode)
        coll.delete(["d0", "d1"])
        assert coll.search("cats", mode=mode) == []


def test_collection_names_are_matched_whole(tmp_path) -> None:
    for bad in ("abc\n", "abc\r\n", "abc\x00"):
        with pytest.raises(InputError, match="collection name"):
            Collection.create(bad, root=tmp_path)


DEEP: dict = {}
_node = DEEP
for _ in range(40):
    _node["x"] = {}
    _node = _node["x"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"id": "a", "text": "t", "metadata": {"k": "bad \ud800 text"}}, "documents[0].metadata.k"),
        ({"id": "a", "text": "t", "metadata": {"bad \udfff key": 1}}, "documents[0].metadata"),
        ({"id": "a", "text": "t", "metadata": {"k": [1, float("nan")]}}, "documents[0].metadata.k"),
        ({"id": "a", "text": "t", "metadata": {"k": float("inf")}}, "documents[0].metadata.k"),
        ({"id": "a", "text": "t", "metadata": {"k": DEEP}}, "documents[0].metadata.k"),
        ({"id": "a", "text": "lone \udc80 surrogate"}, "documents[0].text"),
        ({"id": "a", "title": "\ud83d", "text": "t"}, "documents[0].title"),
        ({"id": "\ud800id", "text": "t"}, "documents[0].id"),
        ({"id": "a", "text": "t", "image": "\ud800"}, "documents[0].image"),
    ],
)
def test_documents_that_could_not_be_read_back_are_refused(built, document, field) -> None:
    root, embedders = built
    before = fingerprint(root / "c")
    with Collection.open("c", root=root, embedders=embedders) as collection:
        with pytest.raises(InputError) as caught:
            collection.upsert([document])
        assert caught.value.field.startswith(field), caught.value.field
        assert len(collection) == 10
    assert fingerprint(root / "c") == before


def test_queries_with_lone_surrogates_are_refused(built) -> None:
    root, embedders = built
    with Collection.open("c", root=root, embedders=embedders, read_only=True) as collection:
        with pytest.raises(InputError, match="surrogate") as caught:
            collection.search_many(["fine", "bad \ud800"])
        assert caught.value.field == "queries[1]"


def test_long_texts_are_refused_with_the_limit(built) -> None:
    root, embedders = built
    with Collection.open("c", root=root, embedders=embedders) as collection:
        collection.options.max_text_chars = 100
        with pytest.raises(InputError, match="100 characters") as caught:
            collection.upsert([{"id": "ok", "text": "short"}, {"id": "long", "text": "x" * 101}])
        assert caught.value.field == "documents[1].text"
        assert collection.get("ok") is None  # the whole batch is refused before any work


def test_a_batch_written_to_while_it_embeds_is_redone(built) -> None:
    """With a batch guard (the server's lock), embedding runs outside it; a document another
    writer changed meanwhile is classified and embedded again, never stored stale."""
    from contextlib import contextmanager

    root, embedders = built
    with Collection.open("c", root=root, embedders=embedders) as collection:
        entered = []

        @contextmanager
        def guard():
            entered.append(1)
            if len(entered) == 2:  # between classifying and acknowledging: another write
                collection.upsert([{"id": "d1", "text": "a completely different text"}])
            yield

        report = collection.upsert(
            [{"id": "d1", "text": DOCS[1]["text"], "metadata": {"tag": "new"}}], batch_guard=guard
        )
        assert report.updated == 1
        stored = collection.get("d1")
        assert stored.text == DOCS[1]["text"] and stored.metadata == {"tag": "new"}
        expected = next(iter(embedders.values())).encode_texts([stored.text])
        assert abs(float(collection.vectors("d1")[0] @ expected[0]) - 1.0) < 1e-4


@pytest.mark.parametrize(
    "breaking",
    ["omniretrieve.index.collection.read_tuning", "omniretrieve.index.collection.Searcher"],
)
def test_a_failed_open_releases_the_write_lock(built, monkeypatch, breaking) -> None:
    """An open that fails with an unexpected exception, wherever, leaves the collection
    openable for writing by this process and others (issue 28, item 4)."""
    root, embedders = built

    def broken(*args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr(breaking, broken)
    with pytest.raises(RuntimeError, match="unexpected"):
        Collection.open("c", root=root, embedders=embedders)
    monkeypatch.undo()
    with Collection.open("c", root=root, embedders=embedders) as collection:
        assert len(collection) == len(DOCS)
