"""Collections with a BGE-M3 checkpoint: its dense, learned-sparse and multi-vector fields are
stored, searched and fused, and every hit's ``dense:``, ``sparse:`` and ``multivector:``
scores equal the reference scores (FlagEmbedding's ``BGEM3FlagModel``, written in
:mod:`tests.builders.bge_m3_reference`) of that query and document: in process, with the
Milvus vector store, after reopening (WAL replay) and after compaction (snapshot). A ColBERT
collection has a multi-vector field only."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.errors import InputError
from omniretrieve.index.collection import Collection, CollectionSettings, field_name
from omniretrieve.multi_vector import maxsim
from tests.builders.bge_m3_reference import flag_colbert, flag_lexical, flag_reference
from tests.builders.tiny_bge_m3 import build_tiny_bge_m3
from tests.builders.tiny_colbert import build_tiny_colbert

DOCUMENTS = [
    {"id": "m3", "text": "BGE M3 is an embedding model supporting dense and lexical retrieval."},
    {"id": "bm25", "text": "BM25 is a bag-of-words retrieval function over the query terms."},
    {"id": "chat", "text": "Le chat mange le poisson dans la cuisine."},
    {"id": "colbert", "text": "ColBERT scores a query by late interaction over token vectors."},
    {"id": "rivers", "text": "Rivers carry water and sediment down to the sea."},
    {"id": "bge", "text": "What is BGE? A family of embedding models from BAAI."},
]
QUERIES = ["What is BGE M3?", "retrieval function for query terms"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bge_m3(tmp_path_factory.mktemp("bge-m3") / "m3")


@pytest.fixture(scope="module")
def m3(checkpoint: Path) -> Embedder:
    return Embedder(checkpoint, dtype="float32")


@cache
def reference(path: Path, text: str) -> tuple[np.ndarray, dict[int, float], np.ndarray]:
    return flag_reference(path, text)


def assert_reference_scores(hits, checkpoint: Path, query: str, model: str | None = None) -> int:
    """Every hit's three scores (named by ``model``, the checkpoint's path by default) equal
    the reference's; returns how many sparse scores were positive (a hit whose learned
    weights share no token with the query's has none)."""
    model = model or str(checkpoint)
    texts = {d["id"]: d["text"] for d in DOCUMENTS}
    q_dense, q_weights, q_colbert = reference(checkpoint, query)
    lexical = 0
    for hit in hits:
        dense, weights, colbert = reference(checkpoint, texts[hit.doc_id])
        assert hit.scores[f"dense:{model}"] == pytest.approx(float(q_dense @ dense), abs=1e-5)
        expected_lexical = flag_lexical(q_weights, weights)
        assert hit.scores.get(f"sparse:{model}", 0.0) == pytest.approx(expected_lexical, abs=1e-5)
        lexical += expected_lexical > 0
        assert hit.scores[f"multivector:{model}"] == pytest.approx(
            flag_colbert(q_colbert, colbert), abs=1e-5
        )
    return lexical


def test_every_hit_shows_the_reference_scores_of_its_three_fields(
    tmp_path: Path, checkpoint: Path, m3: Embedder, vector_store: str
) -> None:
    model = str(checkpoint)
    multi = field_name(model, "multivector")
    settings = CollectionSettings(embedders=(model,), vector_store=vector_store)  # type: ignore[arg-type]
    with Collection.create("m3", root=tmp_path, settings=settings, embedders={model: m3}) as made:
        made.upsert(DOCUMENTS)
        for query in QUERIES:
            hits = made.search(query, top_k=len(DOCUMENTS), mode="hybrid")
            assert {h.doc_id for h in hits} == {d["id"] for d in DOCUMENTS}
            assert assert_reference_scores(hits, checkpoint, query) >= 2
            assert all("sparse" in h.scores or "fused" in h.scores for h in hits)
            dense_only = made.search(query, top_k=3, mode="dense")
            assert all("sparse" not in h.scores for h in dense_only)  # no BM25 in dense mode
            assert_reference_scores(dense_only, checkpoint, query)
        before = {q: made.search(q, top_k=4) for q in QUERIES}
        tokens = {d: len(rows) for d, (_, rows) in made.state().passages[multi].items()}
    if vector_store == "milvus":  # the token vectors are rows in Milvus, one per token
        assert token_rows_in_milvus(tmp_path / "m3" / "milvus.db", multi) == tokens
    with Collection.open("m3", root=tmp_path, embedders={model: m3}) as reopened:
        for query in QUERIES:  # the WAL replayed
            again = reopened.search(query, top_k=4)
            assert [h.doc_id for h in again] == [h.doc_id for h in before[query]]
            for hit, earlier in zip(again, before[query], strict=True):
                assert hit.scores == pytest.approx(earlier.scores, abs=1e-6)
        reopened.flush()
    with Collection.open("m3", root=tmp_path, embedders={model: m3}) as compacted:
        for query in QUERIES:  # from the snapshot
            again = compacted.search(query, top_k=4)
            assert_reference_scores(again, checkpoint, query)
            assert [h.doc_id for h in again] == [h.doc_id for h in before[query]]


def token_rows_in_milvus(path: Path, field: str) -> dict[str, int]:
    from omniretrieve.index.milvus_store import MilvusVectors, milvus_name

    remote = MilvusVectors(str(path), "m3")
    remote.client.load_collection(milvus_name("m3", field))
    rows = remote.client.query(
        milvus_name("m3", field), filter="", limit=10_000, output_fields=["doc_id"]
    )
    remote.close()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["doc_id"]] = counts.get(row["doc_id"], 0) + 1
    return counts


def test_fusion_weights_name_one_weight_per_list(
    tmp_path: Path, checkpoint: Path, m3: Embedder
) -> None:
    """BM25's weight, then the model's dense, learned-sparse and multi-vector lists: a weight
    of 1 on one list alone ranks by that list's scores."""
    model = str(checkpoint)
    settings = CollectionSettings(embedders=(model,), fusion="zscore")
    with Collection.create("w", root=tmp_path, settings=settings, embedders={model: m3}) as made:
        made.upsert(DOCUMENTS)
        query = QUERIES[0]
        for position, stage in enumerate(
            ["sparse", f"dense:{model}", f"sparse:{model}", f"multivector:{model}"]
        ):
            weights = [0.0] * 4
            weights[position] = 1.0
            hits = made.search(query, top_k=3, mode="hybrid", fusion_weights=weights)
            listed = hits[0].scores[stage]
            assert listed == max(h.scores.get(stage, -np.inf) for h in hits)
        with pytest.raises(InputError, match="one per list") as error:
            made.search(query, mode="hybrid", fusion_weights=[1.0, 1.0])
        assert error.value.field == "fusion_weights"


def test_a_colbert_collection_has_a_multi_vector_field_only(tmp_path: Path) -> None:
    folder = build_tiny_colbert(tmp_path / "colbert")
    model = str(folder)
    colbert = Embedder(folder, dtype="float32")
    documents = [
        {"id": "a", "text": "the cat sat on the mat"},
        {"id": "b", "text": "a dog chased the ball"},
        {"id": "c", "text": "the bird sang in the tree"},
    ]
    settings = CollectionSettings(embedders=(model,))
    with Collection.create("c", root=tmp_path, settings=settings, embedders={model: colbert}) as c:
        c.upsert(documents)
        hits = c.search("the cat", top_k=3, mode="dense")
        assert len(hits) == 3
        query = colbert.encode(["the cat"], task="retrieval.query", return_multivector=True)
        texts = {d["id"]: d["text"] for d in documents}
        for hit in hits:
            assert set(hit.scores) == {f"multivector:{model}"}
            document = colbert.encode(
                [texts[hit.doc_id]], task="retrieval.passage", return_multivector=True
            )
            assert query.multivectors is not None and document.multivectors is not None
            expected = maxsim(query.multivectors[0], document.multivectors[0], "sum")
            assert hit.scores[f"multivector:{model}"] == pytest.approx(expected, abs=1e-5)
        # the stages after the first read no dense vector of it: rerank, MMR, duplicates
        reranked = c.search("the cat", top_k=3, rerank=True, diversity=0.5)
        assert len(reranked) == 3 and all("rerank" in h.scores for h in reranked)
        assert len(c.search("the cat", top_k=3, mode="hybrid", collapse_duplicates=True)) == 3


def test_the_same_scores_over_http(tmp_path: Path, checkpoint: Path, server_pool) -> None:
    """A collection made and searched over HTTP with the BGE-M3 checkpoint as its embedder:
    every hit's three scores are the reference's."""
    from fastapi.testclient import TestClient

    from omniretrieve.server.app import create_app
    from omniretrieve.server.config import ServerConfig

    config = ServerConfig(models=(str(checkpoint), "all-MiniLM-L6-v2"), collections_root=tmp_path)
    model = checkpoint.name  # the id a served directory goes by
    with TestClient(create_app(config, pool=server_pool(config))) as client:
        created = client.post("/v1/collections", json={"name": "m3", "embedders": [model]})
        assert created.status_code == 201, created.text
        upserted = client.put("/v1/collections/m3/documents", json={"documents": DOCUMENTS})
        assert upserted.status_code == 200, upserted.text
        for query in QUERIES:
            found = client.post(
                "/v1/collections/m3/search",
                json={"query": query, "top_k": len(DOCUMENTS), "mode": "hybrid"},
            )
            assert found.status_code == 200, found.text
            hits = [SimpleNamespace(**h) for h in found.json()["hits"]]
            assert len(hits) == len(DOCUMENTS)
            assert assert_reference_scores(hits, checkpoint, query, model) >= 2
        late = client.post(
            "/v1/collections/m3/search",
            json={"query": QUERIES[0], "mode": "dense", "outputs": ["multivector"]},
        )
        assert late.status_code == 200, late.text
        assert all(set(h["scores"]) == {f"multivector:{model}"} for h in late.json()["hits"])
        wrong = client.post(
            "/v1/collections/m3/search", json={"query": "x", "outputs": ["colbert"]}
        )
        assert wrong.status_code == 422 and wrong.json()["error"]["field"].startswith("outputs")


def test_the_self_tuned_fusion_weighs_every_list(
    tmp_path: Path, checkpoint: Path, m3: Embedder, datasets_dir: Path
) -> None:
    """The fit on pseudo-queries judges BM25 and the model's three lists, each alone and
    fused, and searches with ``fusion="auto"`` use one weight per list."""
    from omniretrieve.index.documents import iter_jsonl_documents

    model = str(checkpoint)
    corpus = datasets_dir / "scifact" / "corpus.jsonl"
    documents = []
    for record in iter_jsonl_documents(corpus):
        documents.append({"id": str(record["_id"]), "text": record["text"][:600]})
        if len(documents) == 80:
            break
    settings = CollectionSettings(embedders=(model,))
    with Collection.create("t", root=tmp_path, settings=settings, embedders={model: m3}) as made:
        made.upsert(documents)
        fit = made.tune(reranker="")
        lists = (f"dense:{model}", f"sparse:{model}", f"multivector:{model}")
        assert fit.embedders == lists and len(fit.weights) == 4
        assert set(fit.alone) == {"bm25", *lists}
        hits = made.search("cell biology", top_k=3)
        assert hits and all(name in hits[0].scores for name in lists)


def test_int8_collections_keep_int8_token_vectors(
    tmp_path: Path, checkpoint: Path, m3: Embedder
) -> None:
    """``quantization="int8"``: the late-interaction index keeps int8 codes (a quarter of the
    memory), and MaxSim from them stays near the exact one."""
    from omniretrieve.index.token_search import TokenIndexes

    model = str(checkpoint)
    settings = CollectionSettings(embedders=(model,), quantization="int8")
    with Collection.create("q", root=tmp_path, settings=settings, embedders={model: m3}) as made:
        made.upsert(DOCUMENTS)
        query = QUERIES[0]
        q_colbert = reference(checkpoint, query)[2]
        hits = made.search(query, top_k=len(DOCUMENTS), mode="dense", outputs=["multivector"])
        assert len(hits) == len(DOCUMENTS)
        texts = {d["id"]: d["text"] for d in DOCUMENTS}
        for hit in hits:
            exact = flag_colbert(q_colbert, reference(checkpoint, texts[hit.doc_id])[2])
            assert set(hit.scores) == {f"multivector:{model}"}
            assert hit.scores[f"multivector:{model}"] == pytest.approx(exact, abs=0.02)
        field = field_name(model, "multivector")
        sizes = {}
        for codes in ("float32", "int8"):
            tokens = TokenIndexes(made.state, lambda: "max", codes)  # type: ignore[arg-type]
            tokens.search_multivector(field, [q_colbert], 3, None, "mean")
            sizes[codes] = next(iter(tokens._multi.values())).index.memory_bytes
        assert sizes["int8"] < sizes["float32"] / 2


def test_the_command_line_journey(tmp_path: Path, checkpoint: Path) -> None:
    """A JSONL file on disk, indexed with the BGE-M3 checkpoint by ``omniretrieve index``, then
    searched by ``omniretrieve search``: each printed hit carries the reference's scores."""
    import json

    from typer.testing import CliRunner

    from omniretrieve.cli import app

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCUMENTS))
    root = str(tmp_path / "collections")
    runner = CliRunner()
    indexed = runner.invoke(
        app, ["index", "m3", "--from", str(corpus), "-e", str(checkpoint), "--root", root]
    )
    assert indexed.exit_code == 0, indexed.output
    found = runner.invoke(
        app, ["search", "m3", QUERIES[1], "--root", root, "-k", "6", "--format", "jsonl"]
    )
    assert found.exit_code == 0, found.output
    hits = [SimpleNamespace(**json.loads(line)) for line in found.stdout.splitlines() if line]
    assert len(hits) == len(DOCUMENTS)
    assert assert_reference_scores(hits, checkpoint, QUERIES[1]) >= 1
