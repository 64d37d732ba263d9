"""What a collection needs of its models: the typed surface of an embedder and a reranker.

:class:`~omniretrieve.Embedder` and :class:`~omniretrieve.Reranker` satisfy these, and so does
anything else a caller hands a collection (the evaluation's caching embedder), so the index
layer names the methods it calls instead of taking ``Any``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from omniretrieve.embedder import EmbeddingResult
from omniretrieve.models.base import EmbeddingModel, RerankModel
from omniretrieve.reranker import RerankResponse


class IndexEmbedder(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def model(self) -> EmbeddingModel:
        """The loaded model (a hybrid reranker shares it instead of loading its own)."""

    @property
    def dimension(self) -> int: ...

    @property
    def max_length(self) -> int: ...

    @property
    def modalities(self) -> frozenset[str]: ...

    @property
    def outputs(self) -> frozenset[str]:
        """What the model returns per input: ``dense``, ``sparse``, ``multivector``."""

    @property
    def languages(self) -> frozenset[str] | None: ...

    def encode(
        self,
        inputs: Any,
        *,
        task: str | None = ...,
        instruction: str | None = ...,
        return_sparse: bool = ...,
        return_multivector: bool = ...,
    ) -> EmbeddingResult: ...

    def encode_texts(self, texts: Sequence[str], **options: Any) -> np.ndarray: ...

    def token_offsets(self, text: str) -> Iterable[tuple[int, int]]: ...


class IndexReranker(Protocol):
    @property
    def model_id(self) -> str: ...

    @property
    def model(self) -> RerankModel: ...

    def rerank(
        self,
        query: Any,
        documents: Any,
        *,
        return_documents: bool = ...,
        instruction: str | None = ...,
    ) -> RerankResponse: ...
