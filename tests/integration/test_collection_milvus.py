"""The Milvus vector store (Milvus Lite here; the same client code talks to a cluster) gives the
same answers as faiss through the same Collection interface, and re-syncs after a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.index.collection import Collection, CollectionSettings, field_name
from tests.builders.collections import DOCS

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

QUERIES = ["what do cats eat", "capital of France", "markets", "bones"]
MORE = [
    {"id": f"extra-{i}", "text": f"Extra document {i} about topic {i % 3}.", "metadata": {"n": i}}
    for i in range(20)
]


@pytest.fixture()
def pair(tmp_path: Path, tiny_bert_dir: Path):
    model = str(tiny_bert_dir)
    embedders = {model: Embedder(tiny_bert_dir)}
    made = {}
    for store in ("faiss", "milvus"):
        settings = CollectionSettings(embedders=(model,), vector_store=store)  # type: ignore[arg-type]
        made[store] = Collection.create(
            store, root=tmp_path, settings=settings, embedders=embedders
        )
        made[store].upsert(DOCS + MORE)
    yield made, tmp_path, embedders, model
    for collection in made.values():
        collection.close()


def same_answers(a: Collection, b: Collection, **kwargs) -> None:
    """The same scores in the same order, and the same documents wherever a score is not
    shared: documents with exactly equal vectors (the extras differ by a number only, which the
    tiny model reads as the same token) tie, and which of a tie group crossing the cut Milvus
    returns is its own choice."""
    for hits_a, hits_b in zip(
        a.search_many(QUERIES, top_k=5, **kwargs),
        b.search_many(QUERIES, top_k=5, **kwargs),
        strict=True,
    ):
        scores = [h.score for h in hits_a]
        np.testing.assert_allclose(scores, [h.score for h in hits_b], rtol=1e-4, atol=1e-5)
        for position, (hit_a, hit_b) in enumerate(zip(hits_a, hits_b, strict=True)):
            others = scores[:position] + scores[position + 1 :]
            if all(abs(hit_a.score - s) > 1e-5 for s in others):
                assert hit_a.doc_id == hit_b.doc_id


def test_milvus_answers_like_faiss(pair) -> None:
    made, _, _, _ = pair
    faiss_side, milvus_side = made["faiss"], made["milvus"]
    for mode in ("dense", "hybrid"):
        same_answers(faiss_side, milvus_side, mode=mode)
    same_answers(faiss_side, milvus_side, mode="dense", filter={"lang": "en"})
    same_answers(faiss_side, milvus_side, mode="dense", filter={"lang": {"in": ["fr", "de"]}})
    same_answers(faiss_side, milvus_side, mode="dense", filter={"n": {"in": [1, 2, 3]}})
    assert milvus_side.search("cats", mode="dense", filter={"lang": {"in": []}}) == []
    # writes reach Milvus: a delete, a changed text, a changed metadata value
    for side in (faiss_side, milvus_side):
        side.delete(["paris", "extra-3"])
        side.upsert(
            [{"id": "cats", "text": "Cats chase laser pointers.", "metadata": {"lang": "xx"}}]
        )
        side.upsert([{"id": "extra-1", "text": MORE[1]["text"], "metadata": {"n": 100}}])
    same_answers(faiss_side, milvus_side, mode="dense")
    same_answers(faiss_side, milvus_side, mode="dense", filter={"lang": "xx"})
    same_answers(faiss_side, milvus_side, mode="dense", filter={"n": 100})
    assert {h.doc_id for h in milvus_side.search("Paris", mode="dense", top_k=30)}.isdisjoint(
        {"paris", "extra-3"}
    )


def test_milvus_is_resynced_when_opened(pair) -> None:
    """A crash between the WAL acknowledgement and the Milvus push leaves Milvus behind (or
    ahead): opening the collection for writing repairs it from the directory."""
    from omniretrieve.index.milvus_store import MilvusVectors

    made, root, embedders, model = pair
    made["milvus"].close()
    remote = MilvusVectors(str(root / "milvus" / "milvus.db"), "milvus")
    name = field_name(model)
    before = remote.hashes(name)
    assert len(before) == len(DOCS) + len(MORE)
    remote.delete(["cats", "extra-5"], [name])  # pushes that never happened
    remote.upsert(name, 32, [("ghost", "v", {}, np.ones((1, 32), np.float32))])  # a stale row
    remote.close()
    with Collection.open("milvus", root=root, embedders=embedders) as reopened:
        same_answers(made["faiss"], reopened, mode="dense")
        same_answers(made["faiss"], reopened, mode="hybrid")
    remote = MilvusVectors(str(root / "milvus" / "milvus.db"), "milvus")
    assert remote.hashes(name) == before
    remote.close()


def test_milvus_filters_refuse_what_milvus_cannot_express(pair) -> None:
    from omniretrieve.errors import InputError
    from omniretrieve.index.milvus_store import filter_expression

    assert filter_expression({"lang": "de", "year": {"in": [2020, 2021]}}) == (
        'meta["lang"] == "de" and (meta["year"] == 2020 or meta["year"] == 2021)'
    )
    assert filter_expression({'we"ird': 'quo"te'}) == 'meta["we\\"ird"] == "quo\\"te"'
    with pytest.raises(InputError) as caught:
        made, _, _, _ = pair
        made["milvus"].search("cats", mode="dense", filter={"tags": {"in": [["a"]]}})
    assert caught.value.field == "filter"


def test_milvus_lite_rows_are_sealed_every_few_thousand_and_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lite searches unflushed vectors ~7x slower: they are flushed every SEAL_ROWS rows and
    when the store closes, BM25 rows never (Lite keeps BM25 statistics per segment); a server
    (a URI) seals its own segments and is never flushed."""
    from omniretrieve.index import milvus_store
    from omniretrieve.index.milvus_store import MilvusVectors

    monkeypatch.setattr(milvus_store, "SEAL_ROWS", 10)
    remote = MilvusVectors(str(tmp_path / "milvus.db"), "sealed")
    flushed: list[str] = []
    flush = remote._client.flush
    monkeypatch.setattr(remote._client, "flush", lambda name: (flushed.append(name), flush(name)))
    vectors = np.eye(4, dtype=np.float32)[:1]
    remote.upsert("f", 4, [(f"d{i}", "v", {}, vectors) for i in range(6)])
    assert flushed == []
    remote.upsert("f", 4, [(f"e{i}", "v", {}, vectors) for i in range(6)])  # 12 rows
    assert flushed == ["sealed__f"]
    remote.upsert_texts([(f"t{i}", "v", {}, "some words") for i in range(30)], 1.2, 0.75)
    assert flushed == ["sealed__f"]  # BM25 rows stay unflushed: Lite's statistics per segment
    remote.upsert("f", 4, [("last", "v", {}, vectors)])
    remote.close()
    assert flushed == ["sealed__f", "sealed__f"]
    assert milvus_store.is_milvus_lite(str(tmp_path / "milvus.db"))
    assert not milvus_store.is_milvus_lite("http://milvus.internal:19530")


def test_new_documents_send_no_delete_and_replaced_ones_do(
    tmp_path: Path, tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delete by document id makes Milvus Lite scan every row: documents the collection did
    not hold are inserted without one; a replaced document's old rows are still removed."""
    from omniretrieve.index.milvus_store import MilvusVectors, milvus_name

    model = str(tiny_bert_dir)
    settings = CollectionSettings(embedders=(model,), vector_store="milvus")  # type: ignore[arg-type]
    deleted: list[list[str]] = []
    delete_from = MilvusVectors._delete_from

    def spy(self: MilvusVectors, name: str, doc_ids: list[str]) -> None:
        deleted.append(list(doc_ids))
        delete_from(self, name, doc_ids)

    monkeypatch.setattr(MilvusVectors, "_delete_from", spy)
    embedders = {model: Embedder(tiny_bert_dir)}
    with Collection.create("m", root=tmp_path, settings=settings, embedders=embedders) as made:
        made.upsert(DOCS)
        assert [d for chunk in deleted for d in chunk] == []
        long_text = " ".join(["cats eat fish"] * 400)  # many passages, then a few
        made.upsert([{"id": "cats", "text": long_text}])
        made.upsert([{"id": "cats", "text": "Cats chase laser pointers."}])
        assert [d for chunk in deleted for d in chunk] == ["cats", "cats"]
        passages = len(made.state().passages[field_name(model)]["cats"][0])
    remote = MilvusVectors(str(tmp_path / "m" / "milvus.db"), "m")
    remote._client.load_collection(milvus_name("m", field_name(model)))  # Lite restarted
    rows = remote._client.query(
        milvus_name("m", field_name(model)),
        filter='doc_id == "cats"',
        output_fields=["pid"],
        consistency_level="Strong",
    )
    remote.close()
    assert passages < 10  # the long text had 171
    assert sorted(row["pid"] for row in rows) == sorted(f"cats\x1f{n}" for n in range(passages))


def test_a_closed_collection_lets_another_process_open_its_milvus_lite_file(pair) -> None:
    """Milvus Lite runs inside the process that opened the file and locks it; closing the
    collection (the last user of the file here) stops it, so the CLI, a server or a
    restarted writer can open the collection while this process lives on."""
    import subprocess
    import sys

    made, root, _, _ = pair
    made["milvus"].close()
    probe = (
        "import sys; from pymilvus import MilvusClient; "
        "c = MilvusClient(uri=sys.argv[1]); print(c.list_collections()); c.close()"
    )
    opened = subprocess.run(
        [sys.executable, "-c", probe, str(root / "milvus" / "milvus.db")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr[-2000:]
    assert "milvus__dense" in opened.stdout
