"""LangChain and LlamaIndex integrations against a running server, each configured as its
documentation says, changing only the base URL, the API key and (through ``serve --alias``)
nothing else: the model names are the integrations' defaults or the names users copy from
their docs."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from omniretrieve.server.config import ServerConfig
from tests.builders.servers import running_server

pytestmark = pytest.mark.slow

KEY = "test-key"
TEXTS = [
    "Cats eat fish and mice.",
    "The stock market fell on Monday.",
    "Paris is the capital of France.",
]
QUERY = "what do cats eat"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    aliases = (
        ("text-embedding-ada-002", "all-MiniLM-L6-v2"),  # LangChain's / LlamaIndex's defaults
        ("text-embedding-3-small", "all-MiniLM-L6-v2"),
        ("rerank-english-v3.0", "omniretrieve-hybrid-reranker"),
        ("rerank-v3.5", "omniretrieve-hybrid-reranker"),
        ("jina-reranker-v1-base-en", "omniretrieve-hybrid-reranker"),
        ("jina-reranker-v2-base-multilingual", "omniretrieve-hybrid-reranker"),
    )
    config = ServerConfig(api_keys=(KEY,), batch_wait_ms=20, aliases=aliases)
    with running_server(config) as url:
        yield url


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
        base_url=base_url, cohere_api_key=KEY, model="rerank-english-v3.0", top_n=2
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
