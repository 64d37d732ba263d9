"""The server never accepts what it cannot later read back, never reads paths a client names,
and stays within its limits (issue 13, items 1-4, 7 and 9), in process."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from omniretrieve.server.app import create_app
from omniretrieve.server.config import Limits, ServerConfig
from tests.builders.files import fingerprint

LIMITS = Limits(max_text_chars=5000, max_upsert_documents=20)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, server_pool):
    root = Path(tmp_path_factory.mktemp("collections"))
    config = ServerConfig(collections_root=root, limits=LIMITS)
    pool = server_pool(config)
    app = create_app(config, pool=pool)
    with TestClient(app) as client:
        yield client, root, app


def send(client: TestClient, method: str, path: str, raw: str):
    return client.request(
        method, path, content=raw.encode("ascii"), headers={"content-type": "application/json"}
    )


def make(client: TestClient, name: str) -> None:
    """Create ``name`` (once) holding one document."""
    if name in client.get("/v1/collections").json()["collections"]:
        return
    response = client.post("/v1/collections", json={"name": name})
    assert response.status_code == 201, response.text
    upsert = client.put(
        f"/v1/collections/{name}/documents",
        json={"documents": [{"id": "a", "text": "cats eat fish", "metadata": {"k": 1}}]},
    )
    assert upsert.status_code == 200, upsert.text


# Raw bodies: a lone surrogate can only arrive as a \u escape; NaN/Infinity as bare tokens.
BAD_BODIES = [
    ("put", "/v1/collections/{c}/documents",
     '{"documents": [{"id": "x", "text": "t", "metadata": {"k": "\\ud800"}}]}',
     "documents[0].metadata.k"),
    ("put", "/v1/collections/{c}/documents",
     '{"documents": [{"id": "x", "text": "t", "metadata": {"k": NaN}}]}',
     "documents[0].metadata.k"),
    ("put", "/v1/collections/{c}/documents",
     '{"documents": [{"id": "x", "text": "t", "metadata": {"k": [1, -Infinity]}}]}',
     "documents[0].metadata.k[1]"),
    ("put", "/v1/collections/{c}/documents",
     '{"documents": [{"id": "x", "text": "t", "metadata": {"k": ' + "[" * 40 + "]" * 40 + "}}]}",
     "documents[0].metadata.k"),
    ("put", "/v1/collections/{c}/documents",
     '{"documents": [{"id": "x\\udfff", "text": "t"}]}', "documents[0].id"),
    ("put", "/v1/collections/{c}/documents",
     '{"documents": [{"id": "x", "text": "bad \\udc00 text"}]}', "documents[0].text"),
    ("post", "/v1/collections/{c}/search", '{"query": "cats \\ud83d"}', "query"),
    ("post", "/v1/embeddings", '{"input": ["fine", "bad \\ud800"]}', "input[1]"),
    ("post", "/v1/embeddings", '{"input": "x", "instruction": "\\udbff"}', "instruction"),
    ("post", "/v1/rerank", '{"query": "\\ud800", "documents": ["a"]}', "query"),
    ("post", "/v1/rerank", '{"query": "q", "documents": ["a", {"text": "\\ud800"}]}',
     "documents[1].text"),
    ("post", "/v2/rerank", '{"query": "q", "documents": ["\\ud800"]}', "documents[0]"),
    ("post", "/v1/rerank", '{"query": "q", "documents": ["a"], "top_n": NaN}', "top_n"),
    # low surrogates (U+DC00..U+DFFF) alone, in every string field (issue 28, item 1)
    ("post", "/v1/embeddings", '{"input": ["\\udc00"]}', "input[0]"),
    ("post", "/v1/embeddings", '{"input": "x", "instruction": "\\udc00"}', "instruction"),
    ("post", "/v1/rerank", '{"query": "\\udfff", "documents": ["a"]}', "query"),
    ("post", "/v1/rerank", '{"query": "q", "documents": ["a", "\\uDC80"]}', "documents[1]"),
    ("post", "/v2/rerank", '{"query": "q", "documents": ["\\udc00"]}', "documents[0]"),
    ("post", "/v1/collections/{c}/search", '{"query": "cats", "filter": {"k": "\\udc00"}}',
     "filter.k"),
    ("post", "/v1/collections/{c}/search", '{"query": "cats", "filter": {"k": NaN}}',
     "filter.k"),
]  # fmt: skip

JSON_ENCODINGS = ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"]
"""What JSON's own encoding detection reads (and the routes' parser with it)."""


@pytest.mark.parametrize(("method", "path", "raw", "field"), BAD_BODIES)
def test_unreadable_values_are_refused_at_the_door(server, method, path, raw, field) -> None:
    client, root, _ = server
    if "collections" in path:
        make(client, "door")
    response = send(client, method, path.format(c="door"), raw)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"].startswith(field)  # deep nesting: where it broke
    # what was there still reads back, searches and flushes
    if "collections" in path:
        assert client.get("/v1/collections/door/documents/a").status_code == 200
        hits = client.post("/v1/collections/door/search", json={"query": "cats"}).json()["hits"]
        assert [h["doc_id"] for h in hits] == ["a"]


@pytest.mark.parametrize("encoding", JSON_ENCODINGS)
def test_bodies_in_any_json_encoding_are_checked_alike(server, encoding) -> None:
    """UTF-16 / UTF-32 bodies are decoded by the routes: the check reads them the same way,
    escapes and raw surrogates alike."""
    client, _, _ = server
    make(client, "door")
    cases = [(m, p, raw.encode(encoding), f) for m, p, raw, f in BAD_BODIES]
    raw_surrogate = '{"input": ["fine", "raw \udc00"]}'.encode(encoding, "surrogatepass")
    cases.append(("post", "/v1/embeddings", raw_surrogate, "input[1]"))
    for method, path, body, field in cases:
        response = client.request(
            method,
            path.format(c="door"),
            content=body,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, (encoding, path, body, response.text)
        assert response.json()["error"]["field"].startswith(field), response.text
    fine = json.dumps({"input": ["smile \U0001f600"]}, ensure_ascii=False).encode(encoding)
    response = client.post(
        "/v1/embeddings", content=fine, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


def test_valid_surrogate_pairs_and_numbers_still_pass(server) -> None:
    client, _, _ = server
    make(client, "pairs")
    raw = '{"documents": [{"id": "e", "text": "smile \\ud83d\\ude00", "metadata": {"x": 1.5}}]}'
    assert send(client, "put", "/v1/collections/pairs/documents", raw).status_code == 200
    got = client.get("/v1/collections/pairs/documents/e").json()
    assert got["text"] == "smile \U0001f600" and got["metadata"] == {"x": 1.5}


@pytest.mark.parametrize("mode", ["sparse", "dense", "hybrid"])
@pytest.mark.parametrize("rerank", [False, True])
def test_empty_collection_search_is_200_with_no_hits(server, mode, rerank) -> None:
    client, _, _ = server
    name = f"empty-{mode}-{int(rerank)}"
    assert client.post("/v1/collections", json={"name": name}).status_code == 201
    body = {"query": "anything", "mode": mode, "rerank": rerank}
    response = client.post(f"/v1/collections/{name}/search", json=body)
    assert response.status_code == 200 and response.json()["hits"] == [], response.text
    client.put(f"/v1/collections/{name}/documents", json={"documents": [{"id": "z", "text": "z"}]})
    assert client.delete(f"/v1/collections/{name}/documents/z").status_code == 200
    response = client.post(f"/v1/collections/{name}/search", json=body)
    assert response.status_code == 200 and response.json()["hits"] == [], response.text


@pytest.mark.parametrize(
    ("rerank", "status", "field"),
    [
        ("/etc", 404, "rerank"),
        ("../../some/dir", 404, "rerank"),
        ("BAAI/bge-reranker-v2-m3", 404, "rerank"),
        ("", 422, "rerank"),
    ],
)
def test_search_reranks_only_with_loaded_models(server, rerank, status, field) -> None:
    client, _, _ = server
    make(client, "rr")
    response = client.post("/v1/collections/rr/search", json={"query": "cats", "rerank": rerank})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field
    if status == 404:
        assert error["type"] == "model_not_found"
        assert "omniretrieve-hybrid-reranker" in error["message"]
        assert rerank not in error["message"].split("loaded")[1]  # no probe of the path
    loaded = client.post(
        "/v1/collections/rr/search",
        json={"query": "cats", "rerank": "omniretrieve-hybrid-reranker"},
    )
    assert loaded.status_code == 200 and "rerank" in loaded.json()["hits"][0]["scores"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "trail\n"}, "name"),
        ({"name": "ok-lang", "language": "klingon"}, "language"),
        ({"name": "ok-lang", "language": ""}, "language"),
    ],
)
def test_collection_creation_is_validated(server, body, field) -> None:
    client, _, _ = server
    response = client.post("/v1/collections", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_upserts_are_capped(server) -> None:
    client, _, _ = server
    make(client, "caps")
    long_text = {"documents": [{"id": "big", "text": "x" * (LIMITS.max_text_chars + 1)}]}
    response = client.put("/v1/collections/caps/documents", json=long_text)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["field"] == "documents[0].text" and str(LIMITS.max_text_chars) in error["message"]
    many = {"documents": [{"id": str(i), "text": "t"} for i in range(21)]}
    response = client.put("/v1/collections/caps/documents", json=many)
    assert response.status_code == 413 and response.json()["error"]["field"] == "documents"
    assert client.get("/v1/collections/caps/documents/big").status_code == 404


def test_shutdown_flushes_only_written_collections_and_all_of_them(
    tmp_path: Path, caplog, server_pool
) -> None:
    config = ServerConfig(collections_root=tmp_path, limits=LIMITS)
    pool = server_pool(config)
    app = create_app(config, pool=pool)
    with TestClient(app) as client:
        for name in ("read", "written", "broken"):
            make(client, name)
        client.post("/v1/collections/written/search", json={"query": "x"})
    # reopen: "read" is only searched, "written" gets a write, "broken" fails to flush
    app = create_app(config, pool=pool)
    with caplog.at_level(logging.ERROR, logger="omniretrieve.server"):
        with TestClient(app) as client:
            for name in ("read", "written", "broken"):
                client.post(f"/v1/collections/{name}/search", json={"query": "cats"})
            before = fingerprint(tmp_path / "read")
            client.put(
                "/v1/collections/written/documents",
                json={"documents": [{"id": "b", "text": "dogs"}]},
            )
            client.put(
                "/v1/collections/broken/documents",
                json={"documents": [{"id": "b", "text": "dogs"}]},
            )
            broken = app.state.collections.get("broken").collection

            def fail() -> None:
                raise OSError("disk full")

            broken.flush = fail
    assert fingerprint(tmp_path / "read") == before  # nothing rewritten, no new snapshot
    assert (tmp_path / "written" / "wal.jsonl").stat().st_size == 0  # flushed
    assert (tmp_path / "broken" / "wal.jsonl").stat().st_size > 0  # kept in its WAL
    assert "broken" in caplog.text and "disk full" in caplog.text


def test_a_dropped_collection_is_not_used_after_lookup(server) -> None:
    client, _, app = server
    make(client, "racy")
    manager = app.state.collections
    entry = manager.get("racy")  # a request has looked it up; a drop lands before it locks
    assert client.delete("/v1/collections/racy").status_code == 200
    from omniretrieve.errors import CollectionNotFoundError

    with pytest.raises(CollectionNotFoundError):
        manager.run_on(entry, lambda c: c.search("cats"))


def test_chunked_body_over_the_limit_is_413(tmp_path: Path, server_pool) -> None:
    config = ServerConfig(collections_root=tmp_path, limits=Limits(max_body_bytes=1000))
    app = create_app(config, pool=server_pool(config))

    def chunks():
        for _ in range(10):
            yield b'{"input": "' + b"a" * 200

    with TestClient(app) as client:
        response = client.post(
            "/v1/embeddings", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["type"] == "limit_exceeded"


def test_error_bodies_are_json(server) -> None:
    client, _, _ = server
    response = send(client, "post", "/v1/embeddings", '{"input": ["a"], "dimensions": NaN}')
    assert response.status_code == 422
    json.loads(response.text)


def test_reads_are_served_while_a_long_upsert_embeds(server) -> None:
    """An upsert embeds outside the collection's lock (it holds the lock only to classify a
    batch and to acknowledge it): a GET or a search in the meantime is answered."""
    import threading

    client, _, app = server
    make(client, "busy")
    entry = app.state.collections.get("busy")
    embedder = entry.collection.embedder(entry.collection.settings.embedders[0])
    started, release = threading.Event(), threading.Event()
    original = embedder.encode_texts

    def slow_encode(texts, **kwargs):
        started.set()
        release.wait(30)
        return original(texts, **kwargs)

    embedder.encode_texts = slow_encode
    try:
        writer = threading.Thread(
            target=client.put,
            args=("/v1/collections/busy/documents",),
            kwargs={"json": {"documents": [{"id": "slow", "text": "a slow text"}]}},
        )
        writer.start()
        assert started.wait(30)
        got = client.get("/v1/collections/busy/documents/a")  # would wait for the lock
        assert got.status_code == 200
        searched = client.post("/v1/collections/busy/search", json={"query": "x", "mode": "sparse"})
        assert searched.status_code == 200
        assert client.get("/v1/collections/busy/documents/slow").status_code == 404  # not yet
    finally:
        release.set()
        embedder.encode_texts = original
    writer.join(30)
    assert client.get("/v1/collections/busy/documents/slow").status_code == 200


def test_a_failed_open_does_not_lock_the_collection_out(server, monkeypatch) -> None:
    """An open the server makes that fails unexpectedly releases the LOCK: once the cause is
    gone, the next request opens it (issue 28, item 4)."""
    client, _, app = server
    make(client, "reopened")
    manager = app.state.collections
    entry = manager._open.pop("reopened")  # as after a restart: the next request opens it
    entry.collection.close()

    def broken(*args, **kwargs):
        raise RuntimeError("unexpected")

    monkeypatch.setattr("omniretrieve.index.collection.read_tuning", broken)
    lenient = TestClient(app, raise_server_exceptions=False)  # the app runs: client's lifespan
    failed = lenient.post("/v1/collections/reopened/search", json={"query": "cats"})
    assert failed.status_code == 500, failed.text
    monkeypatch.undo()
    response = client.post("/v1/collections/reopened/search", json={"query": "cats"})
    assert response.status_code == 200, response.text
    assert [h["doc_id"] for h in response.json()["hits"]] == ["a"]


# -- issue 28, item 8 ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def guarded(server_pool):
    """An app with an API key and one CORS origin."""
    config = ServerConfig(api_keys=("k1",), cors_origins=("http://ui.example",))
    with TestClient(create_app(config, pool=server_pool(config))) as client:
        yield client


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "GET"])
def test_cors_preflights_pass_without_a_key_and_errors_carry_cors_headers(guarded, method) -> None:
    preflight = guarded.options(
        "/v1/collections/x/documents",
        headers={
            "Origin": "http://ui.example",
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == "http://ui.example"
    assert method in preflight.headers["access-control-allow-methods"]
    refused = guarded.post(
        "/v1/embeddings", json={"input": "x"}, headers={"Origin": "http://ui.example"}
    )
    assert refused.status_code == 401  # the browser can read why
    assert refused.headers["access-control-allow-origin"] == "http://ui.example"


@pytest.mark.parametrize("path", ["/", "/page/search.js", "/docs", "/redoc", "/v1/models"])
def test_security_headers_on_every_page_and_answer(guarded, path) -> None:
    response = guarded.get(path, headers={"Authorization": "Bearer k1"})
    assert response.status_code == 200, response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'self'" in policy
    inline = "'unsafe-inline'" in policy.split("script-src")[1].split(";")[0]
    assert inline == (path in ("/docs", "/redoc"))  # the page runs no inline script
    assert "cdn" not in policy


def test_api_keys_are_trimmed_and_must_be_ascii(tmp_path) -> None:
    from omniretrieve.errors import InputError
    from omniretrieve.server.config import read_api_keys

    assert read_api_keys([" k1 ", "k2\n", "  "], None) == ("k1", "k2")
    for bad in ("clé", "two words", "tab\there"):
        with pytest.raises(InputError, match="API key #1"):
            read_api_keys([bad], None)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/collections/door/search", {"query": "cats", "top_k": "10"}, "top_k"),
        ("/v1/collections/door/search", {"query": "cats", "top_k": True}, "top_k"),
        ("/v1/collections/door/search", {"query": "cats", "top_k": 2.0}, "top_k"),
        ("/v1/collections/door/search", {"query": "cats", "rerank": 1}, "rerank"),
        ("/v1/collections/door/search", {"query": "cats", "max_chars": "5"}, "max_chars"),
        ("/v1/rerank", {"query": "q", "documents": ["a"], "top_n": "1"}, "top_n"),
        ("/v1/rerank", {"query": "q", "documents": ["a"], "return_documents": "yes"},
         "return_documents"),
        ("/v1/embeddings", {"input": "x", "dimensions": "8"}, "dimensions"),
        ("/v1/embeddings", {"input": "x", "normalized": 0}, "normalized"),
    ],
)  # fmt: skip
def test_values_of_the_wrong_type_are_refused_not_coerced(server, path, body, field) -> None:
    client, _, _ = server
    make(client, "door")
    response = client.post(path, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field, response.text


def test_numeric_ids_are_refused_and_embedders_deduplicated_and_capped(server) -> None:
    client, _, _ = server
    make(client, "door")
    numeric = client.put("/v1/collections/door/documents", json={"documents": [{"id": 7}]})
    assert numeric.status_code == 422 and "documents[0].id" in numeric.text
    same = ["all-MiniLM-L6-v2"] * 2000
    many = client.post("/v1/collections", json={"name": "many", "embedders": same})
    assert many.status_code == 422 and many.json()["error"]["field"] == "embedders"
    twice = client.post("/v1/collections", json={"name": "twice", "embedders": same[:3]})
    assert twice.status_code == 201, twice.text
    assert twice.json()["settings"]["embedders"] == ["all-MiniLM-L6-v2"]
