"""Unmodified official clients against a real server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from omniretrieve.server.config import ServerConfig
from tests.builders.servers import running_server


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    aliases = (("my-embedder", "all-MiniLM-L6-v2"),)  # clients' default names need none
    config = ServerConfig(api_keys=("test-key",), batch_wait_ms=20, aliases=aliases)
    with running_server(config) as url:
        yield url


def test_openai_client_embeddings(base_url: str, minilm) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key="test-key", max_retries=0)
    texts = ["The quick brown fox.", "A lazy dog sleeps."]
    response = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)  # base64 by default
    vectors = np.array([item.embedding for item in response.data])
    np.testing.assert_allclose(vectors, minilm.encode_texts(texts), atol=1e-5)
    assert response.usage.total_tokens > 0
    floats = client.embeddings.create(
        model="all-MiniLM-L6-v2", input="hello", encoding_format="float", dimensions=64
    )
    assert len(floats.data[0].embedding) == 64
    from openai import AuthenticationError, NotFoundError, UnprocessableEntityError

    for name in ("my-embedder", "text-embedding-3-small"):  # --alias, a client default
        aliased = client.embeddings.create(model=name, input=texts)
        np.testing.assert_allclose(
            np.array([item.embedding for item in aliased.data]), vectors, atol=1e-6
        )
        assert aliased.model == "all-MiniLM-L6-v2"  # the model that answered
    listed = {m.id: m for m in client.models.list()}
    assert {"all-MiniLM-L6-v2", "my-embedder", "text-embedding-3-small", "rerank-v3.5"} <= set(
        listed
    )
    assert listed["rerank-v3.5"].alias_of == "omniretrieve-hybrid-reranker"  # type: ignore[attr-defined]
    with pytest.raises(NotFoundError) as missing:
        client.embeddings.create(model="all-MiniLM-L6", input="x")
    assert (missing.value.code, missing.value.param) == ("model_not_found", "model")
    message = str(missing.value)
    assert "Did you mean 'all-MiniLM-L6-v2'" in message
    assert "--alias all-MiniLM-L6=all-MiniLM-L6-v2" in message
    with pytest.raises(UnprocessableEntityError) as invalid:
        client.embeddings.create(model="all-MiniLM-L6-v2", input="")
    assert (invalid.value.code, invalid.value.param) == ("invalid_input", "input[0]")
    bad_key = OpenAI(base_url=f"{base_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(AuthenticationError):
        bad_key.embeddings.create(model="all-MiniLM-L6-v2", input="x")


def test_cohere_client_rerank(base_url: str) -> None:
    cohere = pytest.importorskip("cohere")
    client = cohere.ClientV2(api_key="test-key", base_url=base_url)
    documents = [
        "Carson City is the capital city of the American state of Nevada.",
        "Washington, D.C. is the capital of the United States.",
        "Capital punishment has existed in the United States since before it was a country.",
    ]
    response = client.rerank(
        model="rerank-english-v3.0",  # a client default name, served by default
        query="What is the capital of the United States?",
        documents=documents,
        top_n=2,
    )
    assert len(response.results) == 2
    assert response.results[0].index == 1
    assert 0.0 <= response.results[1].relevance_score <= response.results[0].relevance_score <= 1.0


def test_cohere_documented_json_over_raw_http(base_url: str) -> None:
    """Exactly the JSON body of Cohere's v2 rerank docs, sent as raw HTTP."""
    payload = {
        "model": "rerank-v3.5",
        "query": "What is the capital of the United States?",
        "top_n": 3,
        "documents": [
            "Carson City is the capital city of the American state of Nevada.",
            "The Commonwealth of the Northern Mariana Islands is a group of islands in the "
            "Pacific Ocean. Its capital is Saipan.",
            "Washington, D.C. (also known as simply Washington or D.C., and officially as the "
            "District of Columbia) is the capital of the United States. It is a federal district.",
            "Capitalization or capitalisation in English grammar is the use of a capital letter "
            "at the start of a word. English usage varies from capitalization in other languages.",
            "Capital punishment has existed in the United States since before the United States "
            "was a country. As of 2017, capital punishment is legal in 30 of the 50 states.",
        ],
    }
    headers = {"Authorization": "Bearer test-key"}
    answered = httpx.post(f"{base_url}/v2/rerank", json=payload, headers=headers)
    assert answered.status_code == 200  # rerank-v3.5: a client default, served by default
    body = answered.json()
    assert [r["index"] for r in body["results"]][0] == 2
    assert len(body["results"]) == 3 and body["meta"]["billed_units"]["search_units"] == 1


def test_concurrent_requests_are_merged_into_batches(base_url: str) -> None:
    headers = {"Authorization": "Bearer test-key"}

    def call(i: int) -> int:
        response = httpx.post(
            f"{base_url}/v1/embeddings",
            json={"input": [f"request {i} text {j}" for j in range(3)]},
            headers=headers,
            timeout=60,
        )
        return response.status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(call, range(32))) == {200}
    metrics = httpx.get(f"{base_url}/metrics", headers=headers).text
    merged = [
        line
        for line in metrics.splitlines()
        if line.startswith('omniretrieve_batch_requests_bucket{le="1.0",model="all-MiniLM-L6-v2"}')
    ]
    count = [
        line
        for line in metrics.splitlines()
        if line.startswith('omniretrieve_batch_requests_count{model="all-MiniLM-L6-v2"}')
    ]
    single_batches = float(merged[0].split()[-1])
    batches = float(count[0].split()[-1])
    assert single_batches < batches, "no batch held more than one request"
