"""omniretrieve: self-hosted embeddings, reranking and retrieval evaluation.

The heavy parts (torch, transformers) are imported only when a model is loaded, so
``import omniretrieve`` stays fast and works without optional backends.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("omniretrieve")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from omniretrieve.embedder import Embedder, EmbeddingResult
    from omniretrieve.errors import OmniRetrieveError
    from omniretrieve.index.collection import Collection, CollectionSettings
    from omniretrieve.reranker import Reranker, RerankResponse, RerankResult

__all__ = [
    "Collection",
    "CollectionSettings",
    "Embedder",
    "EmbeddingResult",
    "OmniRetrieveError",
    "Reranker",
    "RerankResponse",
    "RerankResult",
    "__version__",
]

_LAZY = {
    "Embedder": "omniretrieve.embedder",
    "EmbeddingResult": "omniretrieve.embedder",
    "Reranker": "omniretrieve.reranker",
    "RerankResponse": "omniretrieve.reranker",
    "RerankResult": "omniretrieve.reranker",
    "OmniRetrieveError": "omniretrieve.errors",
    "Collection": "omniretrieve.index.collection",
    "CollectionSettings": "omniretrieve.index.collection",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'omniretrieve' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
