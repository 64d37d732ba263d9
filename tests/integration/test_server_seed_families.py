"""The server with seed-family checkpoints loaded (tiny random ones of the real architectures):
jina-reranker-m0's announcement request with text and image documents mixed, and image
embeddings from a CLIP model."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from omniretrieve import Embedder, Reranker
from omniretrieve.server.app import create_app
from omniretrieve.server.config import ServerConfig
from tests.builders.tiny_clip import build_tiny_clip, png_bytes
from tests.builders.tiny_m0 import build_tiny_m0


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("seed")
    return {
        "reranker": build_tiny_m0(root / "jina-reranker-m0"),
        "clip": build_tiny_clip(root / "clip-vit-tiny"),
    }


@pytest.fixture(scope="module")
def client(checkpoints: dict[str, Path], server_pool, tmp_path_factory: pytest.TempPathFactory):
    config = ServerConfig(
        models=(str(checkpoints["clip"]), str(checkpoints["reranker"])),
        collections_root=tmp_path_factory.mktemp("collections"),
    )
    with TestClient(create_app(config, pool=server_pool(config))) as test_client:
        yield test_client


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_jina_announcement_request_on_the_m0_architecture(
    client: TestClient, checkpoints: dict[str, Path]
) -> None:
    """The announcement's request: a text query over image and text documents (the image URLs
    replaced by data URIs of images made here, those URLs cannot be reached)."""
    pages = [png_bytes((220, 220, 220), (120, 160)), png_bytes((240, 200, 160), (160, 120))]
    documents = [
        {"image": data_uri(pages[0])},
        {"image": data_uri(pages[1])},
        {
            "text": "We present ReaderLM-v2, a compact 1.5 billion parameter language model "
            "designed for efficient web content extraction."
        },
        {"text": "数据提取么？为什么不用正则啊，你用正则不就全解决了么？"},
        {
            "text": "During the California Gold Rush, some merchants made more money selling "
            "supplies to miners than the miners made finding gold."
        },
    ]
    request = {
        "model": "jina-reranker-m0",
        "query": "small language model data extraction",
        "documents": documents,
        "return_documents": False,
    }
    response = client.post("/v1/rerank", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(r["index"] for r in body["results"]) == [0, 1, 2, 3, 4]
    assert "ocr_images" not in body["usage"]  # the model reads the images itself
    scores = [r["relevance_score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    # the same numbers as the library gives for the same pairs
    library = Reranker(checkpoints["reranker"]).rerank(
        request["query"], documents, return_documents=False
    )
    expected = {r.index: r.relevance_score for r in library.results}
    for result in body["results"]:
        assert result["relevance_score"] == pytest.approx(expected[result["index"]], abs=1e-5)
    top = client.post("/v1/rerank", json={**request, "top_n": 2}).json()
    assert [r["index"] for r in top["results"]] == [r["index"] for r in body["results"][:2]]
    # an image as the query, over text and mixed documents
    by_image = client.post(
        "/v1/rerank",
        json={
            "model": "jina-reranker-m0",
            "query": {"image": data_uri(pages[0])},
            "documents": [documents[2], {"text": "a page", "image": data_uri(pages[1])}],
        },
    )
    assert by_image.status_code == 200, by_image.text
    assert sorted(r["index"] for r in by_image.json()["results"]) == [0, 1]
    loopback = client.post(
        "/v1/rerank",
        json={**request, "documents": [{"image": "http://127.0.0.1/page.png"}]},
    )
    assert (
        loopback.status_code in (400, 422) and loopback.json()["error"]["field"] == "documents[0]"
    )


def test_image_embeddings_through_the_api(client: TestClient, checkpoints: dict[str, Path]) -> None:
    image = png_bytes((30, 30, 200))
    response = client.post(
        "/v1/embeddings",
        json={"model": "clip-vit-tiny", "input": [{"image": data_uri(image)}, {"text": "a dog"}]},
    )
    assert response.status_code == 200, response.text
    vectors = np.array([row["embedding"] for row in response.json()["data"]])
    expected = Embedder(checkpoints["clip"]).encode([{"image": data_uri(image)}, {"text": "a dog"}])
    np.testing.assert_allclose(vectors, expected.embeddings, atol=1e-5)
    local = client.post(
        "/v1/embeddings", json={"model": "clip-vit-tiny", "input": [{"image": "/etc/hostname"}]}
    )
    assert local.status_code == 422  # the server never reads a local path
    assert local.json()["error"]["field"] == "input[0]"


def test_collection_search_reranks_images_and_takes_image_queries(
    client: TestClient, checkpoints: dict[str, Path]
) -> None:
    """Over HTTP as in the library: an m0-architecture reranker reads each candidate as text,
    image or both; a query may be an image or an image with text."""
    created = client.post(
        "/v1/collections",
        json={"name": "pictures", "embedders": ["clip-vit-tiny"], "ocr_images": False},
    )
    assert created.status_code == 201, created.text
    red, green = (
        data_uri(png_bytes((200, 30, 30), (64, 56))),
        data_uri(png_bytes((30, 200, 30), (64, 56))),
    )
    documents = [
        {"id": "text", "text": "A red square drawn on white paper."},
        {"id": "photo", "image": red},
        {"id": "captioned", "text": "A green square, captioned.", "image": green},
    ]
    upserted = client.put("/v1/collections/pictures/documents", json={"documents": documents})
    assert upserted.status_code == 200, upserted.text
    body = {"query": "a red square", "top_k": 3, "rerank": "jina-reranker-m0"}
    response = client.post("/v1/collections/pictures/search", json=body)
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    by_id = {d["id"]: {k: v for k, v in d.items() if k != "id"} for d in documents}
    library = Reranker(checkpoints["reranker"]).rerank(
        "a red square", [by_id[h["doc_id"]] for h in hits], return_documents=False
    )
    for result in library.results:
        assert hits[result.index]["scores"]["rerank"] == pytest.approx(
            result.relevance_score, abs=1e-5
        )
    image_query = {"query": {"image": red}, "top_k": 3, "mode": "dense"}
    response = client.post("/v1/collections/pictures/search", json=image_query)
    assert response.status_code == 200, response.text
    assert response.json()["hits"][0]["doc_id"] == "photo"  # the same image, cosine 1
    composed = {"query": {"text": "greener", "image": red}, "rerank": "jina-reranker-m0"}
    response = client.post("/v1/collections/pictures/search", json=composed)
    assert response.status_code == 422  # a dual encoder embeds text or an image, not both
    assert response.json()["error"]["field"] == "query"
    assert "one or the other" in response.json()["error"]["message"]
    for bad, field in (
        ({"query": {"image": "/etc/hostname"}}, "query"),
        ({"query": {"image": "http://127.0.0.1:9/x.png"}}, "query"),
        ({"query": {"txt": "typo"}}, "query"),
    ):
        response = client.post("/v1/collections/pictures/search", json=bad)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field, response.text


def test_concurrent_rerank_requests_share_one_model_batch(
    client: TestClient, checkpoints: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the model is busy, two more rerank requests queue; they run as one merged model
    batch (``omniretrieve_batch_requests`` counts 2 jobs) with the scores each gets alone."""
    import threading

    pool = client.app.state.pool
    loaded = pool.reranker("jina-reranker-m0")
    gate, started = threading.Event(), threading.Event()
    batches: list[int] = []
    original = loaded.model.score_many

    def gated(requests, **options):
        batches.append(len(requests))
        started.set()
        gate.wait(30)
        return original(requests, **options)

    monkeypatch.setattr(loaded.model, "score_many", gated)
    pages = [data_uri(png_bytes((220, 220, 220), (120, 160)))]
    requests = [
        {"query": "first request", "documents": ["a document", {"image": pages[0]}]},
        {"query": "second request", "documents": ["cats eat fish", "stocks fell"]},
        {"query": "third request", "documents": [{"image": pages[0]}, "paris"]},
    ]
    responses: dict[int, dict] = {}

    def send(number: int) -> None:
        response = client.post("/v1/rerank", json={**requests[number], "return_documents": False})
        responses[number] = response.json()

    first = threading.Thread(target=send, args=(0,))
    first.start()
    assert started.wait(30)  # the model is busy with the first request
    others = [threading.Thread(target=send, args=(n,)) for n in (1, 2)]
    for thread in others:
        thread.start()
    deadline = 0
    while loaded.queue.pending_cost < 6 and deadline < 300:  # all three queued or running
        threading.Event().wait(0.01)
        deadline += 1
    gate.set()
    for thread in [first, *others]:
        thread.join(60)
    assert batches == [1, 2]  # the two waiting requests ran as one model batch
    metrics = client.get("/metrics").text
    merged = [
        line
        for line in metrics.splitlines()
        if line.startswith("omniretrieve_batch_requests_sum") and "jina-reranker-m0" in line
    ]
    assert merged and float(merged[0].rsplit(" ", 1)[1]) >= 3
    library = Reranker(checkpoints["reranker"])
    for number, request in enumerate(requests):
        alone = library.rerank(request["query"], request["documents"], return_documents=False)
        expected = {r.index: r.relevance_score for r in alone.results}
        for result in responses[number]["results"]:
            assert result["relevance_score"] == pytest.approx(expected[result["index"]], abs=1e-5)


def test_image_urls_are_fetched_once_each_from_an_allowed_host(
    checkpoints: dict[str, Path], server_pool, tmp_path: Path
) -> None:
    """A loopback image server, allowed by name for this test only (as ``--allow-image-host``
    allows a deployment's internal hosts): each unique URL is fetched once across requests,
    and an image by URL embeds and reranks like the same image inline."""
    import http.server
    import threading
    from collections import Counter

    pictures = {
        "/red.png": png_bytes((200, 30, 30), (64, 56)),
        "/blue.png": png_bytes((30, 30, 200), (64, 56)),
    }
    served: Counter[str] = Counter()

    class Images(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            served[self.path] += 1
            body = pictures.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Images)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://localhost:{server.server_address[1]}"
    models = (str(checkpoints["clip"]), str(checkpoints["reranker"]))
    try:
        closed = ServerConfig(models=models, collections_root=tmp_path)
        with TestClient(create_app(closed, pool=server_pool(closed))) as client:
            refused = client.post("/v1/embeddings", json={"input": [{"image": f"{base}/red.png"}]})
            assert refused.status_code == 422 and "non-public" in refused.text
        config = ServerConfig(
            models=models, collections_root=tmp_path, allowed_image_hosts=("localhost",)
        )
        with TestClient(create_app(config, pool=server_pool(config))) as client:
            red, blue = f"{base}/red.png", f"{base}/blue.png"
            embedded = client.post(
                "/v1/embeddings",
                json={"input": [{"image": red}, {"image": red}, {"image": blue}]},
            )
            assert embedded.status_code == 200, embedded.text
            inline = client.post(
                "/v1/embeddings", json={"input": [{"image": data_uri(pictures["/red.png"])}]}
            )
            np.testing.assert_allclose(
                embedded.json()["data"][0]["embedding"],
                inline.json()["data"][0]["embedding"],
                atol=1e-6,
            )
            reranked = client.post(
                "/v1/rerank",
                json={"query": "a red square", "documents": [{"image": red}, {"image": blue}]},
            )
            assert reranked.status_code == 200, reranked.text
            echoed = [r["document"] for r in reranked.json()["results"]]
            assert sorted(d["image"] for d in echoed) == [blue, red]  # as sent: the URLs
            missing = client.post(
                "/v1/embeddings", json={"input": [{"image": f"{base}/missing.png"}]}
            )
            assert missing.status_code == 422 and "HTTP 404" in missing.text
    finally:
        server.shutdown()
    assert served == {"/red.png": 1, "/blue.png": 1, "/missing.png": 1}
