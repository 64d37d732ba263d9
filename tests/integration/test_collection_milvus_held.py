"""Collections whose documents Milvus alone holds (``storage="milvus"``): they answer as the
Milvus-native collection whose folder holds everything, the folder keeps no documents (only
the WAL's writes Milvus has not yet confirmed), writes cut off by a crash are replayed from the
WAL on opening, and the process keeps a bounded cache, not the corpus."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from omniretrieve import Embedder
from omniretrieve.errors import InputError
from omniretrieve.index.collection import Collection, CollectionSettings
from omniretrieve.index.milvus_documents import PART_CHARS, HeldState
from tests.builders.collections import DOCS

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

MORE = [
    {"id": f"extra-{i}", "text": f"Extra document {i} about topic {i % 3}.", "metadata": {"n": i}}
    for i in range(20)
]
QUERIES = ["what do cats eat", "capital of France", "markets", "extra document topic", "bones"]


def settings_for(model: str, storage: str) -> CollectionSettings:
    return CollectionSettings(
        embedders=(model,), vector_store="milvus", sparse="milvus", storage=storage,
        fusion="zscore",
    )  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture()
def pair(tmp_path: Path, tiny_bert_dir: Path):
    model = str(tiny_bert_dir)
    embedders = {model: Embedder(tiny_bert_dir)}
    made = {}
    for storage in ("folder", "milvus"):
        made[storage] = Collection.create(
            storage, root=tmp_path, settings=settings_for(model, storage), embedders=embedders
        )
        made[storage].upsert(DOCS + MORE)
    yield made, tmp_path, embedders
    for collection in made.values():
        collection.close()


def same_answers(folder: Collection, held: Collection, **kwargs) -> None:
    """The same scores, and the same documents for each (documents tied on the last score
    may be cut differently; Milvus returns ties in its segments' order)."""
    for query in QUERIES:
        ours = folder.search(query, top_k=8, **kwargs)
        theirs = held.search(query, top_k=8, **kwargs)
        assert [h.score for h in ours] == pytest.approx([h.score for h in theirs], abs=1e-5)

        def answers(hits: list) -> list:
            last = round(hits[-1].score, 3) if hits else None
            kept = [h for h in hits if round(h.score, 3) != last]
            return sorted((round(h.score, 3), h.doc_id, h.text, str(h.metadata)) for h in kept)

        assert answers(ours) == answers(theirs), (query, kwargs)


def test_held_documents_answer_as_the_folder_does(pair) -> None:
    made, _, _ = pair
    folder, held = made["folder"], made["milvus"]
    assert isinstance(held.state(), HeldState)
    for mode in ("sparse", "dense", "hybrid"):
        same_answers(folder, held, mode=mode)
        same_answers(folder, held, mode=mode, filter={"lang": "en"})
        same_answers(folder, held, mode=mode, filter={"n": {"in": [1, 2, 3]}})
    # writes: a delete, a changed text, a changed metadata value, a new document
    for side in (folder, held):
        assert side.delete(["paris", "extra-3", "never-there"]) == 2
        side.upsert(
            [{"id": "cats", "text": "Cats chase laser pointers.", "metadata": {"lang": "xx"}}]
        )
        report = side.upsert([{"id": "extra-1", "text": MORE[1]["text"], "metadata": {"n": 100}}])
        assert (report.added, report.updated, report.unchanged) == (0, 1, 0)
        assert side.upsert([{"id": "extra-2", "text": MORE[2]["text"], "metadata": {"n": 2}}])
    for mode in ("sparse", "dense", "hybrid"):
        same_answers(folder, held, mode=mode)
        same_answers(folder, held, mode=mode, filter={"lang": "xx"})
        same_answers(folder, held, mode=mode, filter={"n": 100})
    assert len(held) == len(folder) == len(DOCS) + len(MORE) - 2
    assert sorted(held.document_ids()) == sorted(folder.document_ids())
    assert held.get("paris") is None and held.get("cats").text == "Cats chase laser pointers."
    model = folder.settings.embedders[0]
    for doc_id in ("cats", "extra-1", "dogs/bones ünïcode"):
        assert held.spans(doc_id, model) == folder.spans(doc_id, model)
        assert held.vectors(doc_id, model) == pytest.approx(folder.vectors(doc_id, model))


def test_the_folder_keeps_no_documents(pair) -> None:
    made, root, embedders = pair
    made["milvus"].close()
    folder = root / "milvus"
    assert not (folder / "CURRENT").exists() and not list(folder.glob("snap-*"))
    assert (folder / "wal.jsonl").stat().st_size == 0  # every write confirmed by Milvus
    with Collection.open("milvus", root=root, embedders=embedders) as reopened:
        assert len(reopened) == len(DOCS) + len(MORE)
        # dense: Lite's BM25 statistics are per segment, so BM25 (and hybrid) scores drift
        # across a restart (documented; 1.6e-5 here, beyond same_answers' 1e-5)
        same_answers(made["folder"], reopened, mode="dense")
        hybrid = [h.doc_id for h in reopened.search(QUERIES[0], top_k=3, mode="hybrid")]
        assert len(hybrid) == 3
        reopened.flush()  # nothing to write: the WAL stays empty, no snapshot appears
        assert not list(folder.glob("snap-*"))


def test_writes_a_crash_cut_off_are_replayed_from_the_wal(
    pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The WAL acknowledged an upsert and a delete; Milvus never heard of them (the process
    died): opening the collection pushes them, then empties the WAL."""
    from omniretrieve.index.vectors import MilvusStore

    made, root, embedders = pair
    held = made["milvus"]

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt("killed")

    with monkeypatch.context() as dying:
        dying.setattr(MilvusStore, "upsert", crash)
        dying.setattr(MilvusStore, "delete", crash)
        with pytest.raises(KeyboardInterrupt):
            held.upsert([{"id": "late", "text": "A late document about comets.", "metadata": {}}])
        with pytest.raises(KeyboardInterrupt):
            held.delete(["stocks"])
    held.close()
    assert (root / "milvus" / "wal.jsonl").stat().st_size > 0
    folder = made["folder"]
    folder.upsert([{"id": "late", "text": "A late document about comets.", "metadata": {}}])
    folder.delete(["stocks"])
    with Collection.open("milvus", root=root, embedders=embedders) as reopened:
        assert (root / "milvus" / "wal.jsonl").stat().st_size == 0
        assert reopened.get("late") is not None and reopened.get("stocks") is None
        same_answers(folder, reopened, mode="dense")
        # BM25 scores are not compared: Milvus Lite restarted with the collection, and keeps
        # BM25 statistics per segment (rows written before and after a restart differ)
        assert [h.doc_id for h in reopened.search("comets", mode="sparse")] == ["late"]
        assert "stocks" not in {h.doc_id for h in reopened.search("stock market", top_k=50)}


def test_the_process_holds_a_bounded_cache_not_the_corpus(
    tmp_path: Path, tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omniretrieve.index import milvus_documents

    monkeypatch.setattr(milvus_documents, "CACHE_DOCUMENTS", 8)
    model = str(tiny_bert_dir)
    embedders = {model: Embedder(tiny_bert_dir)}
    settings = settings_for(model, "milvus")
    with Collection.create("big", root=tmp_path, settings=settings, embedders=embedders) as held:
        held.upsert(MORE)
        held.upsert(DOCS)
        state = held.state()
        assert isinstance(state, HeldState)
        assert state.unsettled() == ([], [])
        for query in QUERIES:
            assert held.search(query, top_k=5)
        assert len(state.held_documents._cache) <= 8
        assert all(not p.pending for p in state.held_fields.values())
        assert len(held) == len(MORE) + len(DOCS)


def test_long_documents_and_images_are_read_back_whole(tmp_path: Path, tiny_bert_dir: Path) -> None:
    from tests.builders.tiny_clip import png_bytes

    model = str(tiny_bert_dir)
    embedders = {model: Embedder(tiny_bert_dir)}
    settings = settings_for(model, "milvus")
    long_text = " ".join(f"wörd{i} 汉字" for i in range(3 * PART_CHARS // 10))
    image = "data:image/png;base64," + base64.b64encode(png_bytes((1, 2, 3))).decode()
    documents = [
        {"id": "long", "text": long_text, "metadata": {"kind": "long"}},
        {"id": "pic", "text": "a small picture", "image": image},
    ]
    with Collection.create("parts", root=tmp_path, settings=settings, embedders=embedders) as c:
        c.options.image_paths = True
        c.upsert(documents)
    with Collection.open("parts", root=tmp_path, embedders=embedders) as reopened:
        assert reopened.get("long").text == long_text
        assert reopened.get("pic").image == image
        assert reopened.search("wörd17", mode="sparse", top_k=1)[0].doc_id == "long"
        spans = reopened.spans("long")
        assert spans is not None and len(spans) > 1
        vectors = reopened.vectors("long")
        assert vectors is not None and vectors.shape[0] == len(spans)


def test_held_documents_need_milvus_for_both_searches() -> None:
    with pytest.raises(InputError) as caught:
        CollectionSettings(vector_store="milvus", storage="milvus").validate()  # type: ignore[arg-type]
    assert caught.value.field == "storage"


def test_tuning_reads_a_sample_not_the_corpus(
    tmp_path: Path, tiny_bert_dir: Path, datasets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fit on Milvus-held documents reads a uniform sample into memory; it records the
    collection's size (so the next upsert does not think it drifted)."""
    from omniretrieve.eval.layouts import load_eval_dataset
    from omniretrieve.index import milvus_documents
    from omniretrieve.index.tuning import sample

    dataset = load_eval_dataset(datasets_dir / "cranfield")
    corpus = [{"id": d.doc_id, "text": d.full_text} for d in dataset.corpus.values()][:300]
    read: list[int] = []
    real_read_state = milvus_documents.read_state

    def counted(state: HeldState, doc_ids: list[str]) -> object:
        read.append(len(doc_ids))
        return real_read_state(state, doc_ids)

    monkeypatch.setattr(sample, "TUNING_SAMPLE", 120)
    monkeypatch.setattr(sample, "read_state", counted)
    model = str(tiny_bert_dir)
    settings = CollectionSettings(
        embedders=(model,), vector_store="milvus", sparse="milvus", storage="milvus"
    )  # type: ignore[arg-type]
    embedders = {model: Embedder(tiny_bert_dir)}
    with Collection.create("tuned", root=tmp_path, settings=settings, embedders=embedders) as c:
        c.options.auto_tune = False
        c.upsert(corpus)
        fitted = c.tune(queries=60, reranker="")
        assert read == [120]
        assert fitted.documents == 300 and fitted.universe <= 120
        assert c.search("boundary layer", top_k=3)


def test_a_reader_sees_the_writers_changes_after_refresh(pair) -> None:
    """The WAL of Milvus-held documents is emptied after each write, so its size says
    nothing: a reader's refresh drops what it cached and reads Milvus again."""
    made, root, embedders = pair
    writer = made["milvus"]
    with Collection.open("milvus", root=root, embedders=embedders, read_only=True) as reader:
        assert reader.get("cats").text == DOCS[0]["text"]
        writer.upsert([{"id": "cats", "text": "Cats nap all day.", "metadata": {}}])
        writer.delete(["stocks"])
        assert reader.refresh()
        assert reader.get("cats").text == "Cats nap all day."
        assert reader.get("stocks") is None
        assert reader.search("nap all day", mode="sparse", top_k=1)[0].doc_id == "cats"
