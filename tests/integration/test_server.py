"""The HTTP API in-process: shapes, errors, limits, keys, readiness, metrics."""

from __future__ import annotations

import base64
import shutil
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient

from omniretrieve.inputs import TextInput
from omniretrieve.server.app import create_app
from omniretrieve.server.config import Limits, ServerConfig
from omniretrieve.server.metrics import ServerMetrics
from omniretrieve.server.pool import EncodeJob, ModelPool
from tests.builders.images import png_claiming_size
from tests.builders.servers import png_data_uri

CONFIG = ServerConfig(limits=Limits(max_inputs=8, max_documents=6, max_body_bytes=200_000))


@pytest.fixture(scope="module")
def pool(server_pool) -> ModelPool:
    return server_pool(CONFIG)


@pytest.fixture(scope="module")
def client(pool: ModelPool):
    with TestClient(create_app(CONFIG, pool=pool)) as test_client:
        yield test_client


needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)


def text_page_uri(lines: list[str]) -> str:
    from tests.builders.documents import text_image

    return "data:image/png;base64," + base64.b64encode(text_image(lines)).decode()


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error", "detail"} and {"type", "message", "field"} <= set(body["error"])
    return body["error"]


# -- embeddings -----------------------------------------------------------------------------
def test_jina_embeddings_shape(client: TestClient, minilm) -> None:
    response = client.post(
        "/v1/embeddings",
        json={
            "model": "all-MiniLM-L6-v2",
            "input": ["A cat sat on the mat.", {"text": "Dogs bark."}],
            "task": "retrieval.passage",
            "dimensions": 128,
            "embedding_type": "float",
            "normalized": True,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list" and body["model"] == "all-MiniLM-L6-v2"
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert all(d["object"] == "embedding" for d in body["data"])
    vectors = np.array([d["embedding"] for d in body["data"]])
    assert vectors.shape == (2, 128)
    expected = minilm.encode(["A cat sat on the mat.", "Dogs bark."], dimensions=128).embeddings
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0


@pytest.mark.parametrize(
    ("embedding_type", "length", "kind"),
    [
        ("base64", None, str),
        ("binary", 48, int),
        ("ubinary", 48, int),
        ("int8", 384, int),
        ("uint8", 384, int),
    ],
)
def test_embedding_types(client: TestClient, embedding_type: str, length, kind) -> None:
    body = client.post(
        "/v1/embeddings", json={"input": "hello", "embedding_type": embedding_type}
    ).json()
    value = body["data"][0]["embedding"]
    if kind is str:
        assert len(np.frombuffer(base64.b64decode(value), dtype="<f4")) == 384
    else:
        assert len(value) == length and all(isinstance(v, int) for v in value)


def test_openai_shape_and_default_model(client: TestClient) -> None:
    body = client.post(
        "/v1/embeddings", json={"input": "hello", "encoding_format": "base64", "user": "u1"}
    ).json()
    assert body["model"] == "all-MiniLM-L6-v2"
    decoded = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    assert abs(float(np.linalg.norm(decoded)) - 1.0) < 1e-5


def test_truncation_flag_and_truncate_false(client: TestClient) -> None:
    long_text = "word " * 2000
    body = client.post("/v1/embeddings", json={"input": ["short", long_text]}).json()
    assert [d["truncated"] for d in body["data"]] == [False, True]
    response = client.post(
        "/v1/embeddings", json={"input": ["short", long_text], "truncate": False}
    )
    assert response.status_code == 422 and error_of(response)["field"] == "input[1]"


@pytest.mark.parametrize(
    ("payload", "status", "field", "message"),
    [
        ({"input": []}, 422, "input", "empty list"),
        ({"input": ["ok", ""]}, 422, "input[1]", "empty text"),
        ({"input": [[1, 2, 3]]}, 422, "input", "token ids"),
        ({"input": [101, 2023]}, 422, "input", "token ids"),
        ({"input": "x", "model": "nope"}, 404, "model", "loaded embedders: all-MiniLM-L6-v2"),
        ({"input": "x", "dimensions": 999}, 422, "dimensions", "384"),
        ({"input": "x", "dimensions": 0}, 422, "dimensions", ""),
        ({"input": "x", "task": "summarise"}, 422, "task", "task must be one of"),
        ({"input": "x", "embedding_type": "float16"}, 422, "embedding_type", ""),
        (
            {"input": "x", "embedding_type": "int8", "encoding_format": "base64"},
            422,
            "embedding_type",
            "disagree",
        ),
        ({"input": [{"txt": "typo"}]}, 422, "input[0]", "unknown key"),
        ({"input": "x", "late_chunking": True}, 422, "late_chunking", "not supported"),
        ({"input": [{"image": "http://127.0.0.1:9/x.png"}]}, 422, "input[0]", "non-public"),
        ({"input": [{"image": "http://169.254.169.254/"}]}, 422, "input[0]", "non-public"),
        ({"input": [{"image": "file:///etc/passwd"}]}, 422, "input[0]", "only http"),
        ({"input": ["a"] * 9}, 413, "input", "limit is 8"),
        ({"inputs": "typo"}, 422, "input", "Field required"),
    ],
)
def test_bad_embedding_requests(client: TestClient, payload, status, field, message) -> None:
    response = client.post("/v1/embeddings", json=payload)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["field"] == field and message in error["message"]
    # the names other clients read: OpenAI's param and code, Jina's / FastAPI's detail
    assert (error["param"], error["code"]) == (error["field"], error["type"])
    assert response.json()["detail"] == error["message"]


def test_images_for_a_text_model_without_ocr_are_a_422_naming_the_field(pool) -> None:
    config = ServerConfig(ocr_fallback=False)
    with TestClient(create_app(config, pool=pool)) as no_ocr:
        response = no_ocr.post(
            "/v1/embeddings", json={"input": ["text", {"image": png_data_uri()}]}
        )
    error = error_of(response)
    assert response.status_code == 422 and error["field"] == "input[1]"
    assert "takes text only" in error["message"] and "no OCR fallback" in error["message"]


@needs_tesseract
def test_images_for_a_text_model_are_read_by_ocr_and_marked(client: TestClient, minilm) -> None:
    page = text_page_uri(["Tides are caused by the Moon"])
    response = client.post(
        "/v1/embeddings", json={"input": ["tides and the moon", {"image": page}]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"][1]["ocr"] is True and "ocr" not in body["data"][0]
    assert body["usage"]["ocr_images"] == 1
    vectors = np.array([d["embedding"] for d in body["data"]])
    assert float(vectors[0] @ vectors[1]) > 0.5  # the OCR text says what the query says
    blank = client.post("/v1/embeddings", json={"input": [{"image": png_data_uri()}]})
    assert blank.status_code == 422 and error_of(blank)["field"] == "input[0]"
    assert "found no text" in error_of(blank)["message"]


def test_decompression_bomb_and_garbage_images(client: TestClient) -> None:
    bomb = "data:image/png;base64," + base64.b64encode(png_claiming_size(20_000, 20_000)).decode()
    response = client.post("/v1/embeddings", json={"input": [{"image": bomb}]})
    assert response.status_code == 413 and error_of(response)["field"] == "input[0]"
    response = client.post("/v1/embeddings", json={"input": [{"image": "bm90IGFuIGltYWdl"}]})
    assert response.status_code == 422 and "not a readable image" in error_of(response)["message"]


def test_body_limits(client: TestClient) -> None:
    response = client.post("/v1/embeddings", json={"input": "x" * 300_000})
    assert response.status_code == 413 and "200000 bytes" in error_of(response)["message"]
    response = client.post(
        "/v1/embeddings", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and error_of(response)["field"] == "body"


# -- rerank ---------------------------------------------------------------------------------
DOCS = ["Cats eat fish and mice.", "The stock market fell.", "Paris is in France."]


def test_jina_rerank(client: TestClient) -> None:
    response = client.post(
        "/v1/rerank",
        json={
            "model": "omniretrieve-hybrid-reranker",
            "query": "what do cats eat",
            "documents": DOCS,
            "top_n": 2,
        },
    )
    body = response.json()
    assert response.status_code == 200
    assert body["model"] == "omniretrieve-hybrid-reranker"
    assert [r["index"] for r in body["results"]][0] == 0 and len(body["results"]) == 2
    assert body["results"][0]["document"] == {"text": DOCS[0]}
    scores = [r["relevance_score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert body["usage"]["total_tokens"] > 0


def test_rerank_object_documents_and_no_documents(client: TestClient) -> None:
    body = client.post(
        "/v1/rerank",
        json={
            "query": {"text": "capital of France"},
            "documents": [{"text": d} for d in DOCS],
            "return_documents": False,
        },
    ).json()
    assert body["results"][0]["index"] == 2 and "document" not in body["results"][0]


def test_cohere_v2_rerank_shape(client: TestClient) -> None:
    body = client.post(
        "/v2/rerank",
        json={
            "model": "omniretrieve-hybrid-reranker",
            "query": "what do cats eat",
            "documents": DOCS,
            "top_n": 3,
        },
    ).json()
    assert set(body) == {"id", "results", "meta"}
    assert body["meta"]["billed_units"]["search_units"] == 1
    assert body["results"][0]["index"] == 0 and "document" not in body["results"][0]


@needs_tesseract
def test_jina_announcement_request_with_images(client: TestClient) -> None:
    """The mixed text + image request of jina-reranker-m0's announcement, images as data URIs
    of pages rendered in the test (the announcement's URLs cannot be reached here). The loaded
    reranker reads text only, so the images are read by OCR and marked in the response."""
    request = {
        "model": "omniretrieve-hybrid-reranker",
        "query": "small language model data extraction",
        "documents": [
            {
                "image": text_page_uri(
                    ["ReaderLM-v2: a small language model", "for data extraction"]
                )
            },
            {"image": text_page_uri(["Tax rates for the year 2021", "and filing deadlines"])},
            {
                "text": "We present ReaderLM-v2, a compact 1.5 billion parameter language model "
                "designed for efficient web content extraction."
            },
            {"text": "数据提取么？为什么不用正则啊，你用正则不就全解决了么？"},
            {
                "text": "During the California Gold Rush, some merchants made more money selling "
                "supplies to miners than the miners made finding gold."
            },
        ],
        "return_documents": False,
        "top_n": 3,
    }
    response = client.post("/v1/rerank", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["results"]) == 3 and body["usage"]["ocr_images"] == 2
    assert {r["index"] for r in body["results"][:2]} == {0, 2}  # the two ReaderLM documents
    assert body["results"][0].get("ocr") is True or body["results"][1].get("ocr") is True
    everything = client.post("/v1/rerank", json={**request, "top_n": None}).json()
    assert sorted(r["index"] for r in everything["results"]) == [0, 1, 2, 3, 4]


@needs_tesseract
def test_a_photo_without_text_is_flagged_not_fatal_for_a_text_reranker(client) -> None:
    """Jina's API scores every document: a text-less image sent to a text-only reranker comes
    back after the scored ones, flagged with a warning, instead of failing the request."""
    photo = png_data_uri(64, 48, (10, 120, 200))
    request = {
        "query": "tax deadlines",
        "documents": [
            "Tax rates for the year 2021 and filing deadlines.",
            {"image": photo},
            "Penguins huddle to keep warm.",
        ],
    }
    response = client.post("/v1/rerank", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["index"] for r in body["results"]][-1] == 1
    flagged = body["results"][-1]
    assert flagged["unread"] is True and flagged["relevance_score"] == 0.0
    assert all("unread" not in r for r in body["results"][:-1])
    assert len(body["warnings"]) == 1 and "documents[1]" in body["warnings"][0]
    alone = client.post(
        "/v1/rerank", json={"query": "tax", "documents": [{"image": photo}], "top_n": 1}
    )
    assert alone.status_code == 200 and alone.json()["results"][0]["unread"] is True
    blank_query = client.post("/v1/rerank", json={"query": {"image": photo}, "documents": ["a"]})
    assert blank_query.status_code == 422 and error_of(blank_query)["field"] == "query"


@pytest.mark.parametrize(
    ("payload", "status", "field"),
    [
        ({"query": "q", "documents": []}, 422, "documents"),
        ({"query": "", "documents": ["a"]}, 422, "query"),
        ({"query": "q", "documents": ["a", ""]}, 422, "documents[1]"),
        ({"query": "q", "documents": ["a"] * 7}, 413, "documents"),
        ({"query": "q", "documents": ["a"], "top_n": 0}, 422, "top_n"),
        ({"query": "q", "documents": ["a"], "model": "all-MiniLM-L6-v2"}, 404, "model"),
        ({"query": 5, "documents": ["a"]}, 422, "query"),
        ({"documents": ["a"]}, 422, "query"),
    ],
)
def test_bad_rerank_requests(client: TestClient, payload, status, field) -> None:
    response = client.post("/v1/rerank", json=payload)
    assert response.status_code == status, response.text
    assert error_of(response)["field"] == field


# -- service endpoints ----------------------------------------------------------------------
def test_models_health_metrics_docs(client: TestClient) -> None:
    models = client.get("/v1/models").json()
    ids = {m["id"]: m for m in models["data"]}
    assert ids["all-MiniLM-L6-v2"]["dimension"] == 384
    assert ids["omniretrieve-hybrid-reranker"]["type"] == "rerank"
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    client.post("/v1/embeddings", json={"input": "metrics please"})
    text = client.get("/metrics").text
    for name in (
        'omniretrieve_requests_total{route="/v1/embeddings",status="200"}',
        "omniretrieve_request_seconds_bucket",
        "omniretrieve_batch_items_bucket",
        "omniretrieve_queue_depth",
        'omniretrieve_tokens_total{model="all-MiniLM-L6-v2"}',
    ):
        assert name in text
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "omniretrieve"
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404 and error_of(missing)["type"] == "not_found"
    assert (
        "access-control-allow-origin"
        not in client.get("/healthz", headers={"Origin": "https://evil.example"}).headers
    )


def test_api_keys(pool: ModelPool) -> None:
    config = ServerConfig(api_keys=("s3cret-key", "other-key"))
    with TestClient(create_app(config, pool=pool)) as keyed:
        assert keyed.get("/healthz").status_code == 200  # liveness stays open
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Basic s3cret-key"},
        ):
            response = keyed.post("/v1/embeddings", json={"input": "x"}, headers=headers)
            assert response.status_code == 401 and error_of(response)["type"] == "unauthorized"
            assert "s3cret" not in response.text
        ok = keyed.post(
            "/v1/embeddings", json={"input": "x"}, headers={"Authorization": "Bearer other-key"}
        )
        assert ok.status_code == 200
        assert keyed.get("/metrics").status_code == 401
        refused = keyed.post("/v1/embeddings", json={"input": "x"}).json()
        assert refused["detail"] == refused["error"]["message"]
        assert refused["error"]["code"] == "unauthorized"


def test_cors_only_when_configured(pool: ModelPool) -> None:
    config = ServerConfig(cors_origins=("https://app.example",))
    with TestClient(create_app(config, pool=pool)) as cors:
        response = cors.get("/healthz", headers={"Origin": "https://app.example"})
        assert response.headers["access-control-allow-origin"] == "https://app.example"


def test_readiness_turns_ready_only_after_loading() -> None:
    gate = threading.Event()

    class SlowPool(ModelPool):
        def load(self) -> None:
            gate.wait(30)
            super().load()

    config = ServerConfig(models=("all-MiniLM-L6-v2",))
    slow = SlowPool(config, ServerMetrics.create())
    with TestClient(create_app(config, pool=slow)) as client:
        assert client.get("/healthz").status_code == 200
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503
        early = client.post("/v1/embeddings", json={"input": "x"})
        assert early.status_code == 503 and early.headers["retry-after"]
        gate.set()
        assert slow.ready.wait(60)
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/embeddings", json={"input": "x"}).status_code == 200


def test_full_queue_answers_429_with_retry_after(pool: ModelPool) -> None:
    config = ServerConfig(limits=Limits(max_pending_items=2))
    busy = ModelPool(config, ServerMetrics.create())
    busy.load()
    gate = threading.Event()
    model = busy.embedders["all-MiniLM-L6-v2"].model
    original = model.encode

    def slow_encode(*args, **kwargs):
        gate.wait(30)
        return original(*args, **kwargs)

    model.encode = slow_encode  # type: ignore[method-assign]
    with TestClient(create_app(config, pool=busy)) as client:
        blocker = busy.embedders["all-MiniLM-L6-v2"].queue.submit(
            EncodeJob([TextInput("x")] * 2, None, None), cost=2
        )
        response = client.post("/v1/embeddings", json={"input": "one more"})
        assert response.status_code == 429 and response.headers["retry-after"] == "1"
        assert error_of(response)["type"] == "queue_full"
        gate.set()
        blocker.result(timeout=30)
        assert client.post("/v1/embeddings", json={"input": "now"}).status_code == 200


BAD_ALIASES = [
    ([("gpt", "not-loaded")], "'not-loaded' is not a served model"),
    ([("all-MiniLM-L6-v2", "omniretrieve-hybrid-reranker")], "may not hide it"),
    ([("omniretrieve-hybrid-reranker", "all-MiniLM-L6-v2")], "may not hide it"),
    ([("sentence-transformers/all-MiniLM-L6-v2", "omniretrieve-hybrid-reranker")], "hide"),
    ([("gpt", "all-MiniLM-L6-v2"), ("gpt", "omniretrieve-hybrid-reranker")], "already an alias"),
    ([("gpt", "all-MiniLM-L6-v2"), ("gpt", "all-MiniLM-L6-v2")], "already an alias"),
    ([("gpt", "gpt")], "not itself or another alias"),
    ([("a", "b"), ("b", "a")], "not itself or another alias"),
    ([("a", "b"), ("b", "all-MiniLM-L6-v2")], "not itself or another alias"),
    ([("x", "y=z")], "one alias per --alias"),
]


@pytest.mark.parametrize(("aliases", "message"), BAD_ALIASES)
def test_aliases_are_checked_before_anything_loads(aliases, message) -> None:
    """Issue 28, item 7: a shadowing, repeated, looping or unknown alias is refused when the
    pool is made (before loading: the server never sits at /readyz 503)."""
    from omniretrieve.errors import InputError

    config = ServerConfig(
        models=("all-MiniLM-L6-v2", "omniretrieve-hybrid-reranker"), aliases=tuple(aliases)
    )
    with pytest.raises(InputError, match=message) as caught:
        ModelPool(config, ServerMetrics.create())
    assert caught.value.field == "alias"


def test_aliases_parse_and_name_served_models_by_any_of_their_names() -> None:
    from omniretrieve.errors import InputError
    from omniretrieve.server.config import parse_aliases

    assert parse_aliases(["text-embedding-3-small=all-MiniLM-L6-v2"]) == (
        ("text-embedding-3-small", "all-MiniLM-L6-v2"),
    )
    with pytest.raises(InputError, match="NAME=MODEL"):
        parse_aliases(["no-equals-sign"])
    aliases = (
        ("gpt", "sentence-transformers/all-MiniLM-L6-v2"),
        ("r", "omniretrieve-hybrid-reranker"),
    )
    config = ServerConfig(
        models=("all-MiniLM-L6-v2", "omniretrieve-hybrid-reranker"), aliases=aliases
    )
    ModelPool(config, ServerMetrics.create()).close()


def test_serve_refuses_a_bad_alias_with_exit_code_2() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "omniretrieve.cli", "serve", "--alias", "x=y=z", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "one alias per --alias" in done.stderr and "Traceback" not in done.stderr
