"""Milvus-native collections (``vector_store="milvus"``, ``sparse="milvus"``): BM25 runs in
Milvus's full-text search over our analysed text and ranks as the in-process BM25 does; filters,
deletes, updates and the repair after a crash reach the BM25 rows as they reach the vectors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from omniretrieve import Embedder
from omniretrieve.errors import InputError
from omniretrieve.index.collection import Collection, CollectionSettings
from omniretrieve.index.milvus_sparse import analysed_text, encode_token
from tests.builders.collections import DOCS

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

QUERIES = ["what do cats eat", "capital of France", "markets", "Paris", "extra document topic"]
MORE = [
    {"id": f"extra-{i}", "text": f"Extra document {i} about topic {i % 3}.", "metadata": {"n": i}}
    for i in range(20)
]
MULTILINGUAL = [
    {"id": "de-1", "text": "Die Katzen fressen gern Fisch.", "metadata": {"lang": "de"}},
    {"id": "zh-1", "text": "北京是中国的首都。", "metadata": {"lang": "zh"}},
]


@pytest.fixture()
def pair(tmp_path: Path, tiny_bert_dir: Path):
    model = str(tiny_bert_dir)
    embedders = {model: Embedder(tiny_bert_dir)}
    made = {}
    for store, sparse in (("faiss", "local"), ("milvus", "milvus")):
        settings = CollectionSettings(
            embedders=(model,), vector_store=store, sparse=sparse, fusion="zscore"
        )  # type: ignore[arg-type]
        made[sparse] = Collection.create(sparse, root=tmp_path, settings=settings,
                                         embedders=embedders)  # fmt: skip
        made[sparse].upsert(DOCS + MORE + MULTILINGUAL)
    yield made, tmp_path, embedders
    for collection in made.values():
        collection.close()


def same_ranking(local: Collection, native: Collection, **kwargs) -> None:
    """The same documents in the same order (BM25 scores differ by Milvus's scale)."""
    for query in QUERIES + ["Katzen Fisch", "中国的首都"]:
        ours = local.search(query, top_k=8, **kwargs)
        theirs = native.search(query, top_k=8, **kwargs)
        assert [h.doc_id for h in ours] == [h.doc_id for h in theirs], (query, kwargs)


def test_tokens_reach_milvus_whole_and_unambiguous() -> None:
    assert encode_token("katz") == "katz"
    assert encode_token("首都") == "x_" + "首都".encode().hex()
    assert encode_token("x_6b") != encode_token("k")  # a real token never looks encoded
    long = analysed_text(["abcdefgh"] * 10_000)
    assert len(long) <= 65_535 and long.endswith("abcdefgh")


def test_native_bm25_ranks_as_the_local_one(pair) -> None:
    made, _, _ = pair
    local, native = made["local"], made["milvus"]
    same_ranking(local, native, mode="sparse")
    same_ranking(local, native, mode="hybrid")  # z-scores: Milvus's scale does not matter
    same_ranking(local, native, mode="sparse", filter={"lang": "en"})
    same_ranking(local, native, mode="sparse", filter={"n": {"in": [1, 2, 3]}})
    # writes reach Milvus's BM25: a delete, a changed text, a changed metadata value
    for side in (local, native):
        side.delete(["paris", "extra-3"])
        side.upsert(
            [{"id": "cats", "text": "Cats chase laser pointers.", "metadata": {"lang": "xx"}}]
        )
        side.upsert([{"id": "extra-1", "text": MORE[1]["text"], "metadata": {"n": 100}}])
    same_ranking(local, native, mode="sparse")
    same_ranking(local, native, mode="sparse", filter={"lang": "xx"})
    same_ranking(local, native, mode="sparse", filter={"n": 100})
    assert native.search("capital of France", mode="sparse") == []  # paris is gone
    assert [h.doc_id for h in native.search("laser pointers", mode="sparse")] == ["cats"]


def test_native_bm25_is_repaired_when_opened(pair) -> None:
    """Pushes a crash cut off (missing rows) and rows of deleted documents (a stale row) are
    repaired from the folder when the collection opens for writing."""
    from omniretrieve.index.milvus_store import BM25_FIELD, MilvusVectors

    made, root, embedders = pair
    made["milvus"].close()
    remote = MilvusVectors(str(root / "milvus" / "milvus.db"), "milvus")
    before = remote.hashes(BM25_FIELD)
    assert len(before) == len(DOCS) + len(MORE) + len(MULTILINGUAL)
    remote.delete(["cats", "extra-5"], [BM25_FIELD])
    remote.upsert_texts([("ghost", "v", {}, "cat fish")], 1.2, 0.75)
    remote.close()
    with Collection.open("milvus", root=root, embedders=embedders) as reopened:
        # rankings are not compared: Milvus Lite restarted with the collection and keeps BM25
        # statistics per segment, so the repaired rows (a new segment) score apart
        assert reopened.search("what do cats eat", mode="sparse")[0].doc_id == "cats"
        assert "ghost" not in {h.doc_id for h in reopened.search("cat fish", mode="sparse")}
    remote = MilvusVectors(str(root / "milvus" / "milvus.db"), "milvus")
    assert remote.hashes(BM25_FIELD) == before
    remote.close()


def test_native_bm25_needs_the_milvus_store() -> None:
    with pytest.raises(InputError) as caught:
        CollectionSettings(sparse="milvus").validate()  # type: ignore[arg-type]
    assert caught.value.field == "sparse"


def test_a_document_left_without_text_loses_its_bm25_row_on_repair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document replaced by an image alone has no BM25 row; when the crash cut off the push
    that removed its old row, opening the collection removes it."""
    from omniretrieve.index.milvus_sparse import MilvusSparse
    from omniretrieve.index.milvus_store import BM25_FIELD, MilvusVectors
    from tests.builders.tiny_clip import build_tiny_clip, png_bytes

    clip = build_tiny_clip(tmp_path / "clip")
    embedders = {str(clip): Embedder(clip)}
    settings = CollectionSettings(
        embedders=(str(clip),), vector_store="milvus", sparse="milvus", ocr_images=False
    )  # type: ignore[arg-type]
    image = base64.b64encode(png_bytes((200, 30, 30))).decode()
    with Collection.create("pics", root=tmp_path, settings=settings, embedders=embedders) as made:
        made.upsert([{"id": "red", "text": "a red square"}, {"id": "note", "text": "a note"}])
        with monkeypatch.context() as cut_off:  # the WAL acknowledged it; Milvus never heard
            cut_off.setattr(MilvusSparse, "upsert", lambda *args, **kwargs: None)
            made.upsert([{"id": "red", "image": image}])
    remote = MilvusVectors(str(tmp_path / "pics" / "milvus.db"), "pics")
    assert set(remote.hashes(BM25_FIELD)) == {"red", "note"}  # the stale row
    remote.close()
    with Collection.open("pics", root=tmp_path, embedders=embedders) as reopened:
        assert [h.doc_id for h in reopened.search("red square", mode="sparse")] == []
    remote = MilvusVectors(str(tmp_path / "pics" / "milvus.db"), "pics")
    assert set(remote.hashes(BM25_FIELD)) == {"note"}
    remote.close()


def test_the_bm25_language_cannot_change_under_rows_milvus_holds(pair) -> None:
    """Milvus holds the text as analysed when it was pushed: a new BM25 language would score
    queries analysed one way against documents analysed another, so it is refused."""
    made, _, _ = pair
    with pytest.raises(InputError) as caught:
        made["milvus"].update_settings(language="german")
    assert caught.value.field == "language"
    assert made["milvus"].settings.language == "auto"
    assert made["local"].update_settings(language="german").language == "german"
