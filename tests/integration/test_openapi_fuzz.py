"""Property-based fuzzing of the API from its own OpenAPI schema, collection endpoints
included: never a 5xx. Hypothesis never generates lone surrogates or NaN, so a second test
sends every endpoint's body with each of its values replaced by one of those: still no 5xx."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from omniretrieve.server.app import create_app  # noqa: E402
from omniretrieve.server.config import Limits, ServerConfig  # noqa: E402
from omniretrieve.server.metrics import ServerMetrics  # noqa: E402
from omniretrieve.server.pool import ModelPool  # noqa: E402

pytestmark = pytest.mark.slow

LIMITS = Limits(max_inputs=16, max_documents=16, max_text_chars=2000, max_upsert_documents=16)


# The schema is read at import from an app whose models are not loaded yet (cheap); the
# module's fixture loads them once, before the first test runs.
COLLECTIONS = Path(tempfile.mkdtemp(prefix="fuzz-collections-"))
CONFIG = ServerConfig(limits=LIMITS, collections_root=COLLECTIONS)
POOL = ModelPool(CONFIG, ServerMetrics.create())
APP = create_app(CONFIG, pool=POOL)
schema = schemathesis.openapi.from_dict(APP.openapi())  # from_asgi would run the lifespan
schema.app = APP


@pytest.fixture(scope="module", autouse=True)
def fuzzed_app():
    POOL.load()
    with TestClient(APP) as client:  # runs the lifespan: collections closed at the end
        for name in ("string", "fuzz"):  # names the generator tends to use: exist and not
            client.post("/v1/collections", json={"name": name})
        yield APP
    POOL.close()
    shutil.rmtree(COLLECTIONS, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors(case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.method, case.path, case.body, response.text)


VALID_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/embeddings"): {"input": ["a text", "another"], "instruction": "find"},
    ("post", "/v1/rerank"): {"query": "q", "documents": ["a", {"text": "b"}], "top_n": 1},
    ("post", "/v2/rerank"): {"query": "q", "documents": ["a", "b"], "top_n": 2},
    ("post", "/v1/collections"): {"name": "made", "language": "en"},
    ("put", "/v1/collections/{name}/documents"): {
        "documents": [
            {"id": "d", "title": "t", "text": "cats", "metadata": {"k": "v", "n": 1.5, "l": [1]}}
        ]
    },
    ("post", "/v1/collections/{name}/search"): {
        "query": "cats",
        "top_k": 3,
        "filter": {"k": "v"},
        "rerank": "omniretrieve-hybrid-reranker",
    },
}


def mutations(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Copies of ``value`` with one leaf replaced: strings get a lone surrogate, numbers become
    NaN (written as JSON's missing NaN token below), every leaf also becomes Infinity."""
    if isinstance(value, dict):
        for key, child in value.items():
            for where, changed in mutations(child, f"{path}.{key}"):
                yield where, {**value, key: changed}
    elif isinstance(value, list):
        for position, child in enumerate(value):
            for where, changed in mutations(child, f"{path}[{position}]"):
                yield where, [*value[:position], changed, *value[position + 1 :]]
    else:
        if isinstance(value, str):
            yield path, value + "\ud800"  # a high surrogate alone
            yield path, "\udc00" + value  # a low one (issue 28: only high ones were caught)
        yield path, float("nan")
        yield path, float("inf")


def test_every_body_endpoint_is_covered(fuzzed_app) -> None:
    spec = fuzzed_app.openapi()
    bodies = {
        (method, path): set(operation["requestBody"]["content"])
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    }
    json_bodies = {key for key, kinds in bodies.items() if "application/json" in kinds}
    assert json_bodies == set(VALID_BODIES)
    # files as they are: multipart, tested in test_server_documents.py
    assert set(bodies) - json_bodies == {("post", "/v1/collections/{name}/files")}


def encoded_bodies(changed: Any) -> Iterator[tuple[str, bytes]]:
    """``changed`` as the bytes a client may send: ASCII JSON with escapes, and the raw
    text in UTF-16 / UTF-32 (which the routes' JSON parser detects and decodes)."""
    yield "escaped", json.dumps(changed).encode("ascii")
    text = json.dumps(changed, ensure_ascii=False)
    for encoding in ("utf-16", "utf-16-be", "utf-32-le"):
        yield encoding, text.encode(encoding, "surrogatepass")


@pytest.mark.parametrize("encoding", ["escaped", "utf-16", "utf-16-be", "utf-32-le"])
def test_surrogate_and_nan_bodies_never_fail_the_server(fuzzed_app, encoding) -> None:
    client = TestClient(fuzzed_app)
    statuses: dict[int, int] = {}
    for (method, path), body in VALID_BODIES.items():
        url = path.format(name="fuzz")
        for where, changed in mutations(body):
            raw = dict(encoded_bodies(changed))[encoding]
            response = client.request(
                method, url, content=raw, headers={"content-type": "application/json"}
            )
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (method, url, where, encoding, response.text)
            assert response.status_code == 422, (method, url, where, encoding, response.text)
            assert response.json()["error"]["field"], response.text
    assert statuses == {422: 82}, statuses  # every leaf of every body, each way it breaks
    # and the collection still reads back, searches and flushes
    assert client.post("/v1/collections/fuzz/search", json={"query": "cats"}).status_code == 200
