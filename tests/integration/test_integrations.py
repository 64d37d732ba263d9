"""The official clients and the LangChain / LlamaIndex integrations at their defaults,
against ``omniretrieve serve`` started with no flags (a port aside): each is configured as its
documentation says, changing only the base URL and the API key (any key: the server has
none). The model names are the clients' defaults or the names their documentation uses."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.builders.servers import ServeProcess, serve_process

pytestmark = pytest.mark.slow

KEY = "any-key"
TEXTS = [
    "Cats eat fish and mice.",
    "The stock market fell on Monday.",
    "Paris is the capital of France.",
]
QUERY = "what do cats eat"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with serve_process(data_dir=str(tmp_path_factory.mktemp("serve-data"))) as process:
        yield process


@pytest.fixture(scope="module")
def base_url(served: ServeProcess) -> str:
    return served.base


def test_banner_names_the_page_the_docs_the_aliases_and_says_ready(served: ServeProcess) -> None:
    assert httpx.get(f"{served.base}/readyz").status_code == 200  # ready when it says so
    banner = served.stderr
    for url in (f"{served.base}/", f"{served.base}/docs"):
        assert url in banner
    assert re.search(r"text-embedding-3-small +-> all-MiniLM-L6-v2", banner)
    assert re.search(r"rerank-v3\.5 +-> omniretrieve-hybrid-reranker", banner)
    listed = httpx.get(f"{served.base}/v1/models").json()["data"]
    aliases = {row["id"]: row.get("alias_of") for row in listed}
    for name in (
        "text-embedding-3-small",
        "text-embedding-3-large",
        "text-embedding-ada-002",
        "rerank-v3.5",
        "rerank-english-v3.0",
        "rerank-multilingual-v3.0",
        "jina-reranker-v2-base-multilingual",
        "jina-embeddings-v3",
    ):
        assert aliases.get(name), name
    assert aliases["jina-embeddings-v3"] == "use-multilingual"  # the first multilingual one


def test_openai_client_default_model(base_url: str, minilm) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0)
    response = client.embeddings.create(model="text-embedding-3-small", input=TEXTS)
    vectors = np.array([item.embedding for item in response.data])
    np.testing.assert_allclose(vectors, minilm.encode_texts(TEXTS), atol=2e-3)
    assert response.model == "all-MiniLM-L6-v2"


def test_cohere_v1_client_defaults(base_url: str) -> None:
    cohere = pytest.importorskip("cohere")
    client = cohere.Client(api_key=KEY, base_url=base_url)
    for model in (None, "rerank-english-v3.0"):
        kwargs = {"model": model} if model else {}
        response = client.rerank(query=QUERY, documents=TEXTS, top_n=2, **kwargs)
        assert [r.index for r in response.results] == [0, 1] or response.results[0].index == 0
        assert len(response.results) == 2


def test_cohere_v2_client_documented_model(base_url: str) -> None:
    cohere = pytest.importorskip("cohere")
    client = cohere.ClientV2(api_key=KEY, base_url=base_url)
    response = client.rerank(model="rerank-v3.5", query=QUERY, documents=TEXTS, top_n=2)
    assert response.results[0].index == 0 and len(response.results) == 2


def check_embeddings(documents: list[list[float]], query: list[float], minilm) -> None:
    expected = minilm.encode_texts(TEXTS)
    assert np.allclose(np.asarray(documents), expected, atol=2e-3)
    similarities = np.asarray(documents) @ np.asarray(query)
    assert int(np.argmax(similarities)) == 0


def test_langchain_openai_embeddings(base_url: str, minilm) -> None:
    openai_module = pytest.importorskip("langchain_openai")
    embeddings = openai_module.OpenAIEmbeddings(
        base_url=f"{base_url}/v1",
        api_key=KEY,
        check_embedding_ctx_length=False,  # else it sends token ids (tiktoken, from the web)
    )
    check_embeddings(embeddings.embed_documents(TEXTS), embeddings.embed_query(QUERY), minilm)


def test_langchain_cohere_rerank(base_url: str) -> None:
    cohere_module = pytest.importorskip("langchain_cohere")
    from langchain_core.documents import Document

    reranker = cohere_module.CohereRerank(
        base_url=base_url, cohere_api_key=KEY, model="rerank-v3.5", top_n=2
    )
    ranked = reranker.compress_documents([Document(page_content=t) for t in TEXTS], QUERY)
    assert [d.page_content for d in ranked][0] == TEXTS[0] and len(ranked) == 2
    assert ranked[0].metadata["relevance_score"] > ranked[1].metadata["relevance_score"]


def test_langchain_jina_rerank(base_url: str, monkeypatch) -> None:
    jina = pytest.importorskip("langchain_community.document_compressors.jina_rerank")
    from langchain_core.documents import Document

    monkeypatch.setattr(jina, "JINA_API_URL", f"{base_url}/v1/rerank")  # its only URL setting
    reranker = jina.JinaRerank(jina_api_key=KEY, top_n=2)
    ranked = reranker.compress_documents([Document(page_content=t) for t in TEXTS], QUERY)
    assert ranked[0].page_content == TEXTS[0] and len(ranked) == 2


def test_llamaindex_openai_embedding(base_url: str, minilm) -> None:
    embedding = pytest.importorskip("llama_index.embeddings.openai")
    model = embedding.OpenAIEmbedding(api_base=f"{base_url}/v1", api_key=KEY)
    check_embeddings(
        model.get_text_embedding_batch(TEXTS), model.get_query_embedding(QUERY), minilm
    )


def nodes() -> list:
    from llama_index.core.schema import NodeWithScore, TextNode

    return [NodeWithScore(node=TextNode(text=t), score=0.0) for t in TEXTS]


def test_llamaindex_jina_rerank(base_url: str) -> None:
    jina = pytest.importorskip("llama_index.postprocessor.jinaai_rerank")
    reranker = jina.JinaRerank(api_key=KEY, base_url=f"{base_url}/v1", top_n=2)
    ranked = reranker.postprocess_nodes(nodes(), query_str=QUERY)
    assert ranked[0].node.get_content() == TEXTS[0] and len(ranked) == 2


def test_llamaindex_cohere_rerank(base_url: str) -> None:
    cohere_rerank = pytest.importorskip("llama_index.postprocessor.cohere_rerank")
    reranker = cohere_rerank.CohereRerank(api_key=KEY, base_url=base_url, top_n=2)
    ranked = reranker.postprocess_nodes(nodes(), query_str=QUERY)
    assert ranked[0].node.get_content() == TEXTS[0] and len(ranked) == 2
