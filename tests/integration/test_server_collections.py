"""Collection endpoints over HTTP (in-process)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from omniretrieve.server.app import create_app
from omniretrieve.server.config import ServerConfig


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, server_pool):
    config = ServerConfig(collections_root=Path(tmp_path_factory.mktemp("collections")))
    pool = server_pool(config)
    with TestClient(create_app(config, pool=pool)) as test_client:
        yield test_client


DOCS = [
    {"id": "cats", "text": "Cats eat fish and mice.", "metadata": {"lang": "en"}},
    {
        "id": "papers/2024/ünï",
        "text": "Paris is the capital of France.",
        "metadata": {"lang": "fr"},
    },
    {"id": "stocks", "text": "The stock market fell on Monday.", "metadata": {"lang": "en"}},
]


HELD = {"vector_store": "milvus", "sparse": "milvus", "storage": "milvus"}


@pytest.mark.parametrize("extra", [{"quantization": "int8"}, HELD], ids=["folder", "milvus-held"])
def test_collection_lifecycle(client: TestClient, extra: dict) -> None:
    if extra is HELD:  # documents in Milvus alone
        pytest.importorskip("milvus_lite")
    name = f"docs-{extra.get('storage', 'folder')}"
    created = client.post("/v1/collections", json={"name": name, **extra})
    assert created.status_code == 201, created.text
    assert created.json()["settings"]["embedders"] == ["all-MiniLM-L6-v2"]
    assert created.json()["settings"]["storage"] == extra.get("storage", "folder")
    assert name in client.get("/v1/collections").json()["collections"]
    upserted = client.put(f"/v1/collections/{name}/documents", json={"documents": DOCS}).json()
    assert upserted["added"] == 3
    fetched = client.get(f"/v1/collections/{name}/documents/papers/2024/ünï")
    assert fetched.status_code == 200 and fetched.json()["metadata"] == {"lang": "fr"}
    search = client.post(
        f"/v1/collections/{name}/search",
        json={"query": "what do cats eat", "top_k": 2, "mode": "hybrid", "rerank": True},
    ).json()
    assert search["hits"][0]["doc_id"] == "cats" and "rerank" in search["hits"][0]["scores"]
    filtered = client.post(
        f"/v1/collections/{name}/search",
        json={"query": "capital city", "filter": {"lang": {"in": ["fr"]}}, "mode": "dense"},
    ).json()
    assert [h["doc_id"] for h in filtered["hits"]] == ["papers/2024/ünï"]
    deleted = client.delete(f"/v1/collections/{name}/documents/stocks")
    assert deleted.status_code == 200
    assert client.get(f"/v1/collections/{name}/documents/stocks").status_code == 404
    assert client.get(f"/v1/collections/{name}").json()["documents"] == 2
    assert client.delete(f"/v1/collections/{name}").status_code == 200
    assert client.post(f"/v1/collections/{name}/search", json={"query": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("post", "/v1/collections/nope/search", {"query": "x"}, 404, "name"),
        ("put", "/v1/collections/nope/documents", {"documents": DOCS}, 404, "name"),
        ("delete", "/v1/collections/nope", None, 404, "name"),
        ("post", "/v1/collections", {"name": "../x"}, 422, "name"),
        ("post", "/v1/collections", {"name": "a", "embedders": ["unknown"]}, 422, "embedders"),
        ("post", "/v1/collections", {"name": "a", "quantization": "int4"}, 422, "quantization"),
        ("post", "/v1/collections", {"name": "a", "storage": "milvus"}, 422, "storage"),
    ],
)
def test_collection_errors(client: TestClient, method, path, body, status, field) -> None:
    response = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    assert response.status_code == status, response.text
    assert response.json()["error"]["field"] == field


def test_bad_documents_and_searches(client: TestClient) -> None:
    client.post("/v1/collections", json={"name": "bad"})
    for documents, field in (
        ([DOCS[0], DOCS[0]], "documents[1].id"),
        ([{"id": "x"}], "documents[0]"),
        ([{"id": "y", "text": 5}], "documents[0].text"),
    ):
        response = client.put("/v1/collections/bad/documents", json={"documents": documents})
        assert response.status_code == 422 and response.json()["error"]["field"] == field
    response = client.post("/v1/collections/bad/search", json={"query": "x", "mode": "fuzzy"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "mode"


def test_search_hits_carry_passages_and_highlights(client) -> None:
    created = client.post("/v1/collections", json={"name": "snippets"})
    assert created.status_code == 201, created.text
    text = "Tides rise twice a day. " * 40 + "The Moon's gravity pulls the oceans."
    client.put(
        "/v1/collections/snippets/documents", json={"documents": [{"id": "t", "text": text}]}
    )
    body = {"query": "moon gravity", "top_k": 1, "max_chars": 120}
    hit = client.post("/v1/collections/snippets/search", json=body).json()["hits"][0]
    start = hit["text_start"]
    assert text[start:].startswith(hit["text"]) and len(hit["text"]) <= 120
    assert text[start - 1] == " " and hit["document_chars"] == len(text)  # whole words
    assert {text[a:b] for a, b in hit["highlights"]} == {"Moon", "gravity"}
    bad = client.post("/v1/collections/snippets/search", json={**body, "max_chars": 0})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "max_chars"


def test_a_collection_shows_and_refits_its_fusion(client: TestClient, datasets_dir) -> None:
    """``GET /v1/collections/NAME``: settings, size, the fit (none below 100 documents);
    ``POST .../tune`` fits on pseudo-queries now; too few documents to judge is a 422."""
    assert client.post("/v1/collections", json={"name": "tuned"}).status_code == 201
    shown = client.get("/v1/collections/tuned").json()
    assert shown["settings"]["fusion"] == "auto" and shown["tuning"] is None
    small = client.post("/v1/collections/tuned/tune")
    assert small.status_code == 422 and small.json()["error"]["param"] == "collection"
    lines = (datasets_dir / "cranfield" / "corpus.jsonl").read_text().splitlines()[:120]
    documents = [json.loads(line) for line in lines]
    documents = [{"id": d["_id"], "text": d["text"]} for d in documents]
    assert (
        client.put("/v1/collections/tuned/documents", json={"documents": documents}).json()["added"]
        == 120
    )
    deadline = time.monotonic() + 120  # the upsert's refit runs in the tuning queue, after it
    while (fitted := client.get("/v1/collections/tuned").json()["tuning"]) is None:
        assert time.monotonic() < deadline, "the refit the upsert made due never landed"
        time.sleep(0.1)
    assert fitted["documents"] == 120 and len(fitted["weights"]) == 2
    again = client.post("/v1/collections/tuned/tune")
    assert again.status_code == 200, again.text
    assert again.json()["tuning"]["weights"] == fitted["weights"]  # same seed, same fit
    assert client.get("/v1/collections/nope").status_code == 404
