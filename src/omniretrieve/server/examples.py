"""Request bodies shown on /docs and /redoc: each one works when tried against ``serve`` at its
defaults (the model names are served or answered by default aliases; the collection examples
go in order: create ``notes``, add documents, search, tune)."""

from __future__ import annotations

from typing import Any

Examples = dict[str, dict[str, Any]]

EMBEDDINGS: Examples = {
    "openai": {
        "summary": "OpenAI's shape (a client default model name)",
        "value": {
            "model": "text-embedding-3-small",
            "input": ["The quick brown fox.", "A lazy dog sleeps."],
        },
    },
    "jina": {
        "summary": "Jina's shape: a retrieval query, 128 dimensions",
        "value": {
            "model": "all-MiniLM-L6-v2",
            "input": ["what do cats eat"],
            "task": "retrieval.query",
            "dimensions": 128,
        },
    },
}

_DOCUMENTS = [
    "Cats eat fish and mice.",
    "The stock market fell on Monday.",
    "Paris is the capital of France.",
]

RERANK: Examples = {
    "jina": {
        "summary": "Jina's (and Cohere v1's) shape",
        "value": {
            "model": "jina-reranker-v2-base-multilingual",
            "query": "what do cats eat",
            "documents": _DOCUMENTS,
            "top_n": 2,
        },
    },
}

COHERE_RERANK: Examples = {
    "cohere": {
        "summary": "Cohere's v2 shape",
        "value": {
            "model": "rerank-v3.5",
            "query": "What is the capital of France?",
            "documents": _DOCUMENTS,
            "top_n": 2,
        },
    },
}

CREATE_COLLECTION: Examples = {
    "default": {
        "summary": "A collection on the default embedder",
        "value": {"name": "notes"},
    },
}

UPSERT: Examples = {
    "texts": {
        "summary": "Texts with metadata (into the collection notes)",
        "value": {
            "documents": [
                {"id": "cats", "text": _DOCUMENTS[0], "metadata": {"topic": "pets"}},
                {"id": "market", "text": _DOCUMENTS[1], "metadata": {"topic": "finance"}},
                {"id": "paris", "text": _DOCUMENTS[2], "metadata": {"topic": "travel"}},
            ]
        },
    },
}

SEARCH: Examples = {
    "hybrid": {
        "summary": "A hybrid search (in the collection notes)",
        "value": {"query": "what do cats eat", "top_k": 5},
    },
    "filtered": {
        "summary": "Reranked, with a metadata filter",
        "value": {
            "query": "what do cats eat",
            "top_k": 5,
            "rerank": True,
            "filter": {"topic": "pets"},
            "max_chars": 200,
        },
    },
}


EMBED_SPARSE: Examples = {  # the route exists when a model with a sparse head is served
    "tei": {
        "summary": "text-embeddings-inference's request",
        "value": {"inputs": ["What is BGE M3?", "BM25 ranks documents by their terms"]},
    },
}
