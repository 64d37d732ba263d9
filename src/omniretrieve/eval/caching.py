"""An embedder whose texts go through the on-disk embedding cache: an evaluation encodes each
dataset once per model, and loads the model only when something is not cached."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from omniretrieve.embedder import Embedder, EmbeddingResult
from omniretrieve.models.base import EmbeddingModel
from omniretrieve.models.registry import declared_languages, default_registry
from omniretrieve.models.sources import vectors_key
from omniretrieve.runtime.cache import EmbeddingCache


class CachingEmbedder:
    """An :class:`~omniretrieve.embedder.Embedder` whose ``encode_texts`` goes through an
    :class:`EmbeddingCache`; the model is loaded only when something is not cached."""

    def __init__(
        self,
        model_id: str,
        cache: EmbeddingCache,
        factory: Callable[[str], Embedder] | None = None,
        *,
        dtype: str = "auto",
    ) -> None:
        self._model_id = model_id
        self._cache = cache
        self._factory = factory
        self._dtype = dtype
        self._embedder: Embedder | None = None
        self._key: str | None = None
        self._languages: tuple[frozenset[str] | None] | None = None
        self._outputs: frozenset[str] | None = None

    @property
    def wrapped(self) -> Embedder:
        """The embedder itself, loaded on first use."""
        if self._embedder is None:
            if self._factory is not None:
                self._embedder = self._factory(self._model_id)
            else:
                self._embedder = Embedder(self._model_id, dtype=self._dtype)
        return self._embedder

    # -- what the model is (these load it) -----------------------------------------------
    @property
    def model_id(self) -> str:
        return self.wrapped.model_id

    @property
    def model(self) -> EmbeddingModel:
        return self.wrapped.model

    @property
    def dimension(self) -> int:
        return self.wrapped.dimension

    @property
    def max_length(self) -> int:
        return self.wrapped.max_length

    @property
    def modalities(self) -> frozenset[str]:
        return self.wrapped.modalities

    @property
    def fingerprint(self) -> str:
        return self.wrapped.fingerprint

    @property
    def outputs(self) -> frozenset[str]:
        """What the model returns per input (dense, sparse, multivector), read from its
        family without loading it."""
        if self._embedder is not None:
            return self._embedder.outputs
        if self._outputs is None:
            source = default_registry().resolve(self._model_id, allow_download=False)
            self._outputs = frozenset(getattr(source.family.loader(), "outputs", {"dense"}))
        return self._outputs

    def token_offsets(self, text: str) -> Iterator[tuple[int, int]]:
        return self.wrapped.token_offsets(text)

    def encode(self, inputs: Any, **options: Any) -> EmbeddingResult:
        """Uncached (images and mixed inputs): straight to the model."""
        return self.wrapped.encode(inputs, **options)

    def cache_key(self) -> str:
        """The model's identity for the cache: its fingerprint (changes with the weights and
        the precision), read from the checkpoint's files without loading the model."""
        if self._embedder is not None:
            return str(self._embedder.fingerprint)
        if self._key is None:
            source = default_registry().resolve(self._model_id, allow_download=False)
            dtype = source.family.loader().runs_in(self._dtype, "cpu")
            self._key = vectors_key(source.model_id, source.fingerprint(), dtype)
        return self._key

    @property
    def languages(self) -> frozenset[str] | None:
        """The model's declared training languages, read without loading it."""
        if self._embedder is not None:
            return self._embedder.languages
        if self._languages is None:  # resolve once: it reads the checkpoint's file list
            source = default_registry().resolve(self._model_id, allow_download=False)
            self._languages = (declared_languages(source.family.loader(), source),)
        return self._languages[0]

    def encode_texts(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        """Vectors from the cache, keyed by the model, the texts and what changes the vectors
        (task, Matryoshka dimensions, instruction)."""
        variant: str | None = kwargs.get("task")
        if kwargs.get("dimensions"):
            variant = f"{variant}-{kwargs['dimensions']}"
        if kwargs.get("instruction") is not None:
            digest = hashlib.sha256(str(kwargs["instruction"]).encode()).hexdigest()[:16]
            variant = f"{variant}-instruction-{digest}"
        return self._cache.get_or_compute(
            self.cache_key(),
            variant,
            texts,
            lambda items: self.wrapped.encode_texts(list(items), **kwargs),
        )
