"""Diversity in a collection: three near-copies of one document and two others. Without it the
copies fill the top; with MMR the top 3 hold one copy; collapsed, the copies are one hit that
lists the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniretrieve.errors import InputError
from omniretrieve.index.collection import Collection
from tests.builders.documents import COPIES_QUERY, NEAR_COPIES

DOCUMENTS = NEAR_COPIES
QUERY = COPIES_QUERY


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory):
    collection = Collection.create("diverse", root=tmp_path_factory.mktemp("collections"))
    collection.upsert(DOCUMENTS)
    yield collection
    collection.close()


def test_copies_fill_the_top_without_diversity(collection) -> None:
    top = [h.doc_id for h in collection.search(QUERY, top_k=3)]
    assert sorted(top) == ["copy-1", "copy-2", "copy-3"]


def test_mmr_keeps_one_copy_in_the_top_3(collection) -> None:
    """Relevance is the fused score scaled to [0, 1] over the candidates: here the copies are
    1 and the others under 0.1, so a copy (novelty: cosine 1 with the picked one) scores
    lambda - (1 - lambda) and another hit about -(1 - lambda) x its cosine with it (~0.5):
    lambda 0.3 picks the others, 0.5 still a copy (their relevance is too far below)."""
    hits = collection.search(QUERY, top_k=3, diversity=0.3)
    top = [h.doc_id for h in hits]
    assert sum(d.startswith("copy-") for d in top) == 1
    assert set(top) - {"copy-1", "copy-2", "copy-3"} == {"statins", "exercise"}
    assert top[0].startswith("copy-")  # the most relevant stays first
    half = [h.doc_id for h in collection.search(QUERY, top_k=3, diversity=0.5)]
    assert all(d.startswith("copy-") for d in half)
    same = collection.search(QUERY, top_k=5, diversity=1.0)  # relevance alone: the order
    assert [h.doc_id for h in same] == [h.doc_id for h in collection.search(QUERY, top_k=5)]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)  # hits carry their MMR value, best first
    assert all(h.scores["mmr"] == h.score and "fused" in h.scores for h in hits)


def test_collapsed_copies_are_one_hit(collection) -> None:
    hits = collection.search(QUERY, top_k=5, collapse_duplicates=True)
    assert len(hits) == 3
    first = hits[0]
    assert first.doc_id.startswith("copy-")
    assert sorted([first.doc_id, *first.duplicates]) == ["copy-1", "copy-2", "copy-3"]
    assert first.to_json()["duplicates"] == first.duplicates
    assert "duplicates" not in hits[1].to_json()


def test_diversity_out_of_range_is_refused(collection, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="within 0 and 1") as raised:
        collection.search(QUERY, diversity=2.0)
    assert raised.value.field == "diversity"


def test_diversity_over_http(tmp_path: Path, server_pool) -> None:
    from fastapi.testclient import TestClient

    from omniretrieve.server.app import create_app
    from omniretrieve.server.config import ServerConfig

    config = ServerConfig(collections_root=tmp_path)
    with TestClient(create_app(config, pool=server_pool(config))) as client:
        assert client.post("/v1/collections", json={"name": "diverse"}).status_code < 300
        put = client.put("/v1/collections/diverse/documents", json={"documents": DOCUMENTS})
        assert put.status_code < 300, put.text

        def search(**options) -> list[dict]:
            body = {"query": QUERY, "top_k": 3, **options}
            response = client.post("/v1/collections/diverse/search", json=body)
            assert response.status_code == 200, response.text
            return response.json()["hits"]

        assert sum(h["doc_id"].startswith("copy-") for h in search(diversity=0.3)) == 1
        collapsed = search(top_k=5, collapse_duplicates=True)
        assert len(collapsed) == 3 and len(collapsed[0]["duplicates"]) == 2
        for bad, field in (
            ({"diversity": 1.5}, "diversity"),
            ({"collapse_duplicates": 1}, "collapse_duplicates"),
        ):
            response = client.post("/v1/collections/diverse/search", json={"query": QUERY, **bad})
            assert response.status_code == 422 and response.json()["error"]["field"] == field


def test_diversity_on_the_command_line(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from omniretrieve.cli import app

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in DOCUMENTS))
    runner = CliRunner()
    root = ["--root", str(tmp_path / "collections")]
    indexed = runner.invoke(app, ["index", "diverse", "--from", str(corpus), *root])
    assert indexed.exit_code == 0, indexed.output

    def search(*options: str) -> list[dict]:
        found = runner.invoke(app, ["search", "diverse", QUERY, "-k", "3", *options, *root])
        assert found.exit_code == 0, found.output
        return json.loads(found.stdout)["hits"]

    assert sum(h["doc_id"].startswith("copy-") for h in search("--diversity", "0.3")) == 1
    collapsed = search("-k", "5", "--collapse-duplicates")
    assert len(collapsed) == 3 and len(collapsed[0]["duplicates"]) == 2
    bad = runner.invoke(app, ["search", "diverse", QUERY, "--diversity", "2", *root])
    assert bad.exit_code != 0 and "within 0 and 1" in bad.output
    table = runner.invoke(app, ["search", "diverse", QUERY, "--collapse-duplicates",
                                "--format", "table", *root])  # fmt: skip
    assert table.exit_code == 0 and "+2 similar" in table.stdout


def test_eval_measures_a_diversified_pipeline(tmp_path: Path) -> None:
    """The copies are not what the query wants: without diversity they fill the top 3
    (recall@3 0), with ``+mmr:0.3`` the two other documents join the top 3 (recall@3 1)."""
    import json

    from typer.testing import CliRunner

    from omniretrieve.cli import app

    root = tmp_path / "copies"
    (root / "corpus").mkdir(parents=True)
    for document in DOCUMENTS:
        (root / "corpus" / f"{document['id']}.txt").write_text(document["text"])
    relevant = {"statins.txt": 1, "exercise.txt": 1}
    (root / "queries.jsonl").write_text(
        json.dumps({"_id": "q1", "text": QUERY, "relevant": relevant}) + "\n"
    )
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        ["eval", "--dataset", str(root), "-p", "hybrid", "-p", "hybrid+mmr:0.3",
         "--metrics", "recall@3", "--out", str(out), "--cache-dir", str(tmp_path / "cache")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    recall = {r["pipeline"]: r["metrics"]["recall@3"] for r in data["results"]}
    assert recall == {"hybrid": 0.0, "hybrid+mmr:0.3": 1.0}
