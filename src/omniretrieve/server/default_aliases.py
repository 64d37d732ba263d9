"""The model names that clients and integrations send when nobody changes them (OpenAI's,
Cohere's and Jina's SDKs, LangChain, LlamaIndex), answered by the served models so that a
client pointed at the server works with its defaults. ``serve --no-default-aliases`` turns
them off; a served model's own name or an ``--alias`` always wins over one of these."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

EMBEDDING_DEFAULTS = (
    "text-embedding-3-small",  # the OpenAI SDK's examples, LlamaIndex's OpenAIEmbedding
    "text-embedding-3-large",
    "text-embedding-ada-002",  # LangChain's OpenAIEmbeddings, older LlamaIndex
    "jina-embeddings-v2-base-en",
)
MULTILINGUAL_EMBEDDING_DEFAULTS = ("jina-embeddings-v3",)
RERANK_DEFAULTS = (
    "rerank-v3.5",  # Cohere's documentation
    "rerank-english-v3.0",  # LlamaIndex's CohereRerank
    "rerank-multilingual-v3.0",
    "rerank-english-v2.0",
    "rerank-v4.0-pro",  # the Cohere SDK's examples
    "rerank-v4.0-fast",
    "jina-reranker-v1-base-en",  # LangChain's and LlamaIndex's JinaRerank
    "jina-reranker-v1-turbo-en",
    "jina-reranker-v2-base-multilingual",  # Jina's documentation
)


@dataclass(frozen=True)
class ServedModel:
    model_id: str
    kind: str
    """"embedder" or "reranker"."""
    multilingual: bool = False


def default_aliases(served: Iterable[ServedModel], taken: Mapping[str, str]) -> dict[str, str]:
    """Client default name -> the served model that answers it: embeddings names go to the
    first embedder (the multilingual names to the first multilingual one, where there is
    one), rerank names to the first reranker. Names in ``taken`` (served models, --alias)
    are left alone."""
    models = list(served)
    embedders = [m for m in models if m.kind == "embedder"]
    rerankers = [m for m in models if m.kind == "reranker"]
    multilingual = [m for m in embedders if m.multilingual] or embedders
    chosen: dict[str, str] = {}
    for names, candidates in (
        (EMBEDDING_DEFAULTS, embedders),
        (MULTILINGUAL_EMBEDDING_DEFAULTS, multilingual),
        (RERANK_DEFAULTS, rerankers),
    ):
        if candidates:
            chosen.update({n: candidates[0].model_id for n in names if n not in taken})
    return chosen
