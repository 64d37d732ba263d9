"""Collections end to end on a tiny encoder (fast) and on MiniLM where meaning matters.

Every collection test runs once per vector store (faiss, and Milvus Lite where it is
installed): the stores sit behind one interface and must behave the same through it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.errors import CollectionNotFoundError, InputError
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.index.collection import MODES, Collection, CollectionSettings
from omniretrieve.index.store import CollectionFormatError, CollectionLockedError
from tests.builders.collections import DOCS


@pytest.fixture()
def tiny_collection(tmp_path: Path, tiny_bert_dir: Path, vector_store: str):
    model = str(tiny_bert_dir)
    settings = CollectionSettings(embedders=(model,), vector_store=vector_store)  # type: ignore[arg-type]
    embedders = {model: Embedder(tiny_bert_dir)}
    collection = Collection.create("tiny", root=tmp_path, settings=settings, embedders=embedders)
    yield collection, tmp_path, embedders
    collection.close()


def minilm_collection(
    tmp_path: Path, minilm, hybrid_reranker, store: str, name: str = "m"
) -> Collection:
    return Collection.create(
        name,
        root=tmp_path,
        settings=CollectionSettings(vector_store=store),  # type: ignore[arg-type]
        embedders={"all-MiniLM-L6-v2": minilm},
        rerankers={"omniretrieve-hybrid-reranker": hybrid_reranker},
    )


def test_upsert_get_delete_and_reupsert(tiny_collection) -> None:
    collection, _, _ = tiny_collection
    report = collection.upsert(DOCS)
    assert (report.added, report.updated, report.unchanged) == (4, 0, 0)
    assert len(collection) == 4
    assert collection.get("dogs/bones ünïcode").text == "Dogs chew bones."
    again = collection.upsert(DOCS)
    assert (again.unchanged, again.embedded_passages) == (4, 0)
    changed_meta = collection.upsert([{**DOCS[0], "metadata": {"lang": "en", "year": 1999}}])
    assert (changed_meta.updated, changed_meta.embedded_passages) == (1, 0)
    assert collection.get("cats").metadata["year"] == 1999
    changed_text = collection.upsert([{**DOCS[0], "text": "Cats eat tuna."}])
    assert changed_text.updated == 1 and changed_text.embedded_passages == 1
    assert collection.delete(["cats", "missing"]) == 1
    assert collection.get("cats") is None and len(collection) == 3


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ([DOCS[0], DOCS[0]], "appears twice"),
        ([{"id": "x"}], "neither text nor image"),
        ([{"text": "no id"}], "needs a non-empty string 'id'"),
        ([{"id": "", "text": "t"}], "needs a non-empty string 'id'"),
        (["just a string"], "must be an object"),
        ([{"id": "m", "text": "t", "metadata": [1]}], "metadata must be an object"),
        ([{"id": "a\nb", "text": "t"}], "control characters"),
        ([{"id": "x" * 1001, "text": "t"}], "longer than 1000 bytes"),
    ],
)
def test_bad_documents(tiny_collection, documents, message) -> None:
    collection, _, _ = tiny_collection
    with pytest.raises(InputError, match=message):
        collection.upsert(documents)
    assert len(collection) == 0  # nothing half-written


def test_persistence_wal_replay_and_snapshot(tiny_collection) -> None:
    collection, root, embedders = tiny_collection
    collection.upsert(DOCS)
    before = collection.vectors("paris")
    collection.close()
    reopened = Collection.open("tiny", root=root, embedders=embedders)  # WAL replay
    assert len(reopened) == 4
    np.testing.assert_array_equal(reopened.vectors("paris"), before)
    reopened.flush()  # snapshot + empty WAL
    assert (root / "tiny" / "wal.jsonl").stat().st_size == 0
    stocks = reopened.vectors("stocks")
    reopened.delete(["paris"])
    reopened.close()
    third = Collection.open("tiny", root=root, embedders=embedders)  # snapshot + WAL delete
    assert len(third) == 3 and third.get("paris") is None
    np.testing.assert_array_equal(third.vectors("stocks"), stocks)
    third.close()


def test_torn_wal_tail_is_dropped(tiny_collection) -> None:
    collection, root, embedders = tiny_collection
    collection.upsert(DOCS[:2])
    collection.close()
    with open(root / "tiny" / "wal.jsonl", "ab") as wal:
        wal.write(b'{"op":"upsert","documents":[{"document":{"id":"half')  # died mid-write
    reopened = Collection.open("tiny", root=root, embedders=embedders)
    assert sorted(reopened.document_ids()) == ["cats", "stocks"]
    reopened.upsert(DOCS[2:3])  # appends after the cut, on a clean line
    reopened.close()
    third = Collection.open("tiny", root=root, embedders=embedders)
    assert sorted(third.document_ids()) == ["cats", "paris", "stocks"]
    third.close()


def test_a_snapshot_left_by_a_crash_before_the_switch_is_replaced(tiny_collection) -> None:
    collection, root, embedders = tiny_collection
    collection.upsert(DOCS[:2])
    collection.flush()  # snap-1 is live
    (root / "tiny" / "snap-2").mkdir()  # a crash after renaming snap-2 into place
    (root / "tiny" / "snap-2" / "documents.jsonl").write_text("stale")
    collection.upsert(DOCS[2:3])
    collection.flush()  # must not fail on the leftover
    collection.close()
    reopened = Collection.open("tiny", root=root, embedders=embedders)
    assert len(reopened) == 3
    reopened.close()


def test_corrupted_and_incompatible_collections(tiny_collection) -> None:
    collection, root, embedders = tiny_collection
    collection.upsert(DOCS[:1])
    collection.close()
    settings_file = root / "tiny" / "collection.json"
    original = settings_file.read_text()
    settings_file.write_text(json.dumps({**json.loads(original), "format_version": 99}))
    with pytest.raises(CollectionFormatError, match="format version 99"):
        Collection.open("tiny", root=root, embedders=embedders)
    settings_file.write_text("{broken")
    with pytest.raises(CollectionFormatError, match="unreadable"):
        Collection.open("tiny", root=root, embedders=embedders)
    assert settings_file.read_text() == "{broken"  # nothing overwritten
    settings_file.write_text(original)
    wal = root / "tiny" / "wal.jsonl"
    wal.write_bytes(b"garbage line\n" + wal.read_bytes())
    with pytest.raises(CollectionFormatError, match="line 1 is damaged"):
        Collection.open("tiny", root=root, embedders=embedders)


def test_management_and_names(tmp_path: Path, tiny_collection) -> None:
    collection, root, embedders = tiny_collection
    with pytest.raises(CollectionLockedError):
        Collection.open("tiny", root=root, embedders=embedders)
    assert Collection.names(root) == ["tiny"]
    with pytest.raises(InputError, match="already exists"):
        Collection.create("tiny", root=root, embedders=embedders)
    with pytest.raises(CollectionNotFoundError):
        Collection.open("nope", root=root)
    for bad in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(InputError, match="collection name"):
            Collection.create(bad, root=root)
    collection.close()
    Collection.drop("tiny", root=root)
    assert Collection.names(root) == []
    with pytest.raises(CollectionNotFoundError):
        Collection.drop("tiny", root=root)


def test_search_modes_filters_and_rerank(
    tmp_path: Path, minilm, hybrid_reranker, vector_store: str
) -> None:
    with minilm_collection(tmp_path, minilm, hybrid_reranker, vector_store) as collection:
        collection.upsert(DOCS)
        for mode in ("sparse", "dense", "hybrid"):
            hits = collection.search("what do cats eat", mode=mode, top_k=2)
            assert hits[0].doc_id == "cats", mode
        hits = collection.search("what do cats eat", top_k=3, rerank=True)
        assert hits[0].doc_id == "cats" and "rerank" in hits[0].scores
        assert 0.0 <= hits[0].score <= 1.0
        filtered = collection.search("animals", top_k=5, filter={"year": 2020})
        assert {h.doc_id for h in filtered} <= {"cats", "dogs/bones ünïcode"}
        in_filter = collection.search("city", filter={"lang": {"in": ["fr", "de"]}}, mode="dense")
        assert {h.doc_id for h in in_filter} <= {"paris", "dogs/bones ünïcode"}
        assert collection.search("x", filter={"lang": "zz"}) == []
        for kwargs, message in (
            ({"mode": "fuzzy"}, "mode must be one of"),
            ({"top_k": 0}, "top_k"),
            ({"filter": {"lang": {"like": "f"}}}, "filter condition"),
        ):
            with pytest.raises(InputError, match=message):
                collection.search("cats", **kwargs)
        with pytest.raises(InputError, match="empty text"):
            collection.search("  ")


def test_text_past_the_model_limit_is_searchable(
    tmp_path: Path, minilm, hybrid_reranker, vector_store: str
) -> None:
    """The answer sits after 600 words: passages make it visible to dense search."""
    filler = " ".join(["The committee reviewed the quarterly budget figures in detail."] * 60)
    documents = [
        {"id": "long", "text": filler + " The secret ingredient of the soup is saffron."},
        {"id": "other", "text": filler + " The meeting ended early."},
    ]
    with minilm_collection(tmp_path, minilm, hybrid_reranker, vector_store, "long") as collection:
        report = collection.upsert(documents)
        assert report.embedded_passages > 2
        hits = collection.search("secret soup ingredient saffron", mode="dense", top_k=1)
        assert hits[0].doc_id == "long"


def test_ingest_helpers(tmp_path: Path) -> None:
    from omniretrieve.index.documents import iter_folder_documents, iter_jsonl_documents

    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.md").write_text("# Title\nBody")
    (tmp_path / "docs" / "sub" / "b.py").write_text("def f():\n    return 1\n")
    (tmp_path / "docs" / "image.png").write_bytes(b"\x89PNG")
    found = {d["id"]: d for d in iter_folder_documents(tmp_path / "docs")}
    assert set(found) == {"a.md", "sub/b.py"}
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"_id": "1", "title": "T", "text": "x"}) + "\n\n{bad\n")
    with pytest.raises(InputError, match=r"corpus.jsonl:3"):
        list(iter_jsonl_documents(corpus))


def test_rerank_from_stored_vectors_equals_the_reranker_api(
    tmp_path: Path, minilm, hybrid_reranker, vector_store: str
) -> None:
    """The collection's fast rerank path gives the scores Reranker.rerank computes."""
    filler = " ".join(["Budgets were reviewed by the committee in great detail."] * 50)
    documents = [
        {"id": "long", "text": filler + " Saffron is the secret ingredient."},
        *DOCS,
    ]
    with minilm_collection(tmp_path, minilm, hybrid_reranker, vector_store, "rr") as collection:
        collection.upsert(documents)
        hits = collection.search("what do cats eat", top_k=5, rerank=True)
        texts = [collection.get(h.doc_id).text for h in hits]
        api = hybrid_reranker.rerank("what do cats eat", texts, return_documents=False)
        expected = {hits[r.index].doc_id: r.relevance_score for r in api.results}
        for hit in hits:
            assert hit.scores["rerank"] == pytest.approx(expected[hit.doc_id], abs=1e-4)


def test_search_many_equals_search_and_weights_move_the_fusion(
    tmp_path: Path, minilm, hybrid_reranker, vector_store: str
) -> None:
    collection = minilm_collection(tmp_path, minilm, hybrid_reranker, vector_store)
    collection.upsert(DOCS)
    queries = ["what do cats eat", "capital city of France", "bones"]
    many = collection.search_many(queries, top_k=3, rerank=True)
    for query, hits in zip(queries, many, strict=True):
        single = collection.search(query, top_k=3, rerank=True)
        assert [(h.doc_id, round(h.score, 5)) for h in hits] == [
            (h.doc_id, round(h.score, 5)) for h in single
        ]
    # all weight on BM25 ranks as BM25 does
    bm25_only = collection.search("cats fish", top_k=4, fusion_weights=(1.0, 0.0))
    sparse = collection.search("cats fish", top_k=4, mode="sparse")
    assert [h.doc_id for h in bm25_only][: len(sparse)] == [h.doc_id for h in sparse]
    for bad in [(1.0,), (1.0, -1.0), (1.0, 1.0, 1.0)]:
        with pytest.raises(InputError) as caught:
            collection.search("cats", fusion_weights=bad)
        assert caught.value.field == "fusion_weights"
    with pytest.raises(InputError) as caught:
        collection.search_many(["cats", " "])
    assert caught.value.field == "queries[1]"
    with pytest.raises(InputError, match="this collection's embedders"):
        collection.search("cats", embedders=["other-model"])
    collection.close()


def test_update_settings_and_fit_fusion(
    tmp_path: Path, minilm, hybrid_reranker, vector_store: str
) -> None:
    from omniretrieve.eval.tuning import fit_fusion_weights

    collection = minilm_collection(tmp_path, minilm, hybrid_reranker, vector_store)
    collection.upsert(DOCS)
    queries = {"q1": "cats eat fish", "q2": "capital of France", "q3": "stock market"}
    qrels = {"q1": {"cats": 1}, "q2": {"paris": 1}, "q3": {"stocks": 1}}
    fit = fit_fusion_weights(collection, queries, qrels)
    assert fit.score == 1.0 and fit.weights == (0.5, 0.5)  # ties go to equal weights
    assert set(fit.grid) == {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}
    # every candidate weighting is fused from one first stage; each equals a real search
    for bm25_weight, score in fit.grid.items():
        searched = collection.search_many(
            list(queries.values()), fusion_weights=(bm25_weight, 1 - bm25_weight)
        )
        run = {
            q: {h.doc_id: h.score for h in hits} for q, hits in zip(queries, searched, strict=True)
        }
        assert evaluate_run(qrels, run, ["ndcg@10"]).mean["ndcg@10"] == pytest.approx(score)
    collection.update_settings(fusion_weights=(0.7, 0.3), rerank_candidates=50)
    with pytest.raises(InputError, match="shape the stored data"):
        collection.update_settings(quantization="int8")
    with pytest.raises(InputError):
        collection.update_settings(rerank_candidates=0)
    collection.close()
    with Collection.open("m", root=tmp_path, embedders={"all-MiniLM-L6-v2": minilm}) as opened:
        assert opened.settings.fusion_weights == (0.7, 0.3)
        assert opened.settings.rerank_candidates == 50


def test_bm25_only_collection(tmp_path: Path) -> None:
    """No vectors, so no vector store: once."""
    settings = CollectionSettings(embedders=())
    with Collection.create("bm25", root=tmp_path, settings=settings) as collection:
        report = collection.upsert(DOCS)
        assert report.embedded_passages == 0
        assert collection.search("cats", mode="sparse")[0].doc_id == "cats"
        assert collection.search("cats", mode="hybrid")[0].doc_id == "cats"
        with pytest.raises(InputError, match="holds no vectors"):
            collection.search("cats", mode="dense")


def test_first_stages_are_reused_and_forgotten_on_change(
    tmp_path: Path, minilm, hybrid_reranker, vector_store: str
) -> None:
    collection = minilm_collection(tmp_path, minilm, hybrid_reranker, vector_store)
    collection.upsert(DOCS)
    queries = ["cats eat fish", "capital of France", "Dogs chew bones"]
    plain = collection.search_many(queries, rerank=True)
    fresh = {mode: collection.search_many(queries, mode=mode) for mode in MODES}
    with collection.reusing_first_stages():
        for mode in (*MODES, *MODES):  # the second round reads every list from the cache
            assert collection.search_many(queries, mode=mode) == fresh[mode]
        assert collection.cached_first_stages == 3 * 3  # per query: BM25 list, dense list, vector
        assert collection.search_many(queries, rerank=True) == plain
        filtered = collection.search_many(queries, filter={"year": 2020})
        assert {h.doc_id for hits in filtered for h in hits} <= {"cats", "dogs/bones ünïcode"}
        collection.upsert([{"id": "lions", "text": "Lions eat fish too.", "metadata": {}}])
        assert "lions" in {h.doc_id for h in collection.search("cats eat fish")}
    assert collection.cached_first_stages is None
    collection.close()


def test_dense_search_over_two_fields_takes_their_weights(tmp_path: Path, tiny_bert_dir) -> None:
    """Dense mode fuses its fields with the weights after BM25's: all weight on the first
    field ranks as that field alone does."""
    from tests.builders.tiny_bert import build_tiny_bert

    other = build_tiny_bert(tmp_path / "other", seed=7)
    first, second = str(tiny_bert_dir), str(other)
    settings = CollectionSettings(embedders=(first, second))
    embedders = {first: Embedder(tiny_bert_dir), second: Embedder(other)}
    with Collection.create(
        "two", root=tmp_path, settings=settings, embedders=embedders
    ) as collection:
        collection.upsert(DOCS)
        alone = collection.search("cats and fish", mode="dense", embedders=[first], top_k=4)
        weighted = collection.search(
            "cats and fish", mode="dense", top_k=4, fusion_weights=(0.5, 1.0, 0.0)
        )
        assert [h.doc_id for h in weighted] == [h.doc_id for h in alone]
        flipped = collection.search(
            "cats and fish", mode="dense", top_k=4, fusion_weights=(0.5, 0.0, 1.0)
        )
        only_second = collection.search("cats and fish", mode="dense", embedders=[second], top_k=4)
        assert [h.doc_id for h in flipped] == [h.doc_id for h in only_second]


def test_open_or_create(tmp_path: Path, tiny_bert_dir) -> None:
    model = str(tiny_bert_dir)
    embedders = {model: Embedder(tiny_bert_dir)}
    settings = CollectionSettings(embedders=(model,), language="german")
    with Collection.open_or_create(
        "either", root=tmp_path, settings=settings, embedders=embedders
    ) as made:
        made.upsert(DOCS)
    with Collection.open_or_create(
        "either", root=tmp_path, settings=CollectionSettings(), embedders=embedders
    ) as opened:
        assert len(opened) == len(DOCS) and opened.settings.language == "german"
    assert Collection.names(tmp_path) == ["either"]
    Collection.drop("either", root=tmp_path)
    assert Collection.names(tmp_path) == []


def test_hits_name_their_best_passage_and_the_query_terms_in_it(
    tmp_path: Path, minilm, hybrid_reranker
) -> None:
    """A long document whose answer sits after 600 words: the hit's passage is the one that
    holds it, its highlights are the query's words (stemmed as BM25 stems them) inside that
    passage, and ``max_chars`` returns text from the passage's start."""
    filler = " ".join(["The committee reviewed the quarterly budget figures in detail."] * 60)
    text = filler + " The secret ingredient of the soup is saffron, said the cooks."
    with minilm_collection(tmp_path, minilm, hybrid_reranker, "faiss", "snip") as collection:
        collection.upsert([{"id": "long", "text": text}, {"id": "other", "text": "Cats."}])
        for mode in ("dense", "hybrid", "sparse"):
            (hit,) = collection.search("secret soup ingredients", mode=mode, top_k=1)
            assert hit.doc_id == "long" and hit.passage is not None, mode
            start, end = hit.passage
            assert start <= text.index("saffron") < end, mode
            words = {text[a:b] for a, b in hit.highlights}
            assert words == {"secret", "ingredient", "soup"}, (mode, words)
            assert all(start <= a and b <= end for a, b in hit.highlights)
            assert hit.text == text and hit.text_start == 0
        (cut,) = collection.search("secret soup ingredients", top_k=1, max_chars=200)
        # a window of the passage that shows its matching words
        assert cut.passage[0] <= cut.text_start < cut.passage[1]
        assert text[cut.text_start :].startswith(cut.text) and len(cut.text) <= 200
        end = cut.text_start + len(cut.text)
        assert text[cut.text_start - 1] == " " and (end == len(text) or text[end] == " ")
        assert cut.document_chars == len(text)  # whole words: the page adds ellipses
        assert {text[a:b] for a, b in cut.highlights} == {"secret", "ingredient", "soup"}
        assert all(cut.text_start <= a and b <= cut.text_start + 200 for a, b in cut.highlights)
        with pytest.raises(InputError, match="max_chars"):
            collection.search("soup", max_chars=0)


def test_hits_without_snippets_are_the_same_hits(tiny_collection) -> None:
    """``snippets=False`` (what evaluation asks) returns the same documents and scores, and
    leaves passages and highlights out."""
    collection, _, _ = tiny_collection
    collection.upsert(DOCS)
    queries = ["what do cats eat", "capital of France"]
    for mode in ("sparse", "dense", "hybrid"):
        full = collection.search_many(queries, top_k=5, mode=mode)
        bare = collection.search_many(queries, top_k=5, mode=mode, snippets=False)
        for hits, plain in zip(full, bare, strict=True):
            assert [(h.doc_id, h.score) for h in hits] == [(h.doc_id, h.score) for h in plain]
            assert hits[0].highlights or mode == "dense"
            assert all(h.passage is None and not h.highlights for h in plain)
