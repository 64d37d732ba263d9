"""An embedder whose texts go through the on-disk embedding cache: an evaluation encodes each
dataset once per model, and loads the model only when something is not cached."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from omniretrieve.embedder import Embedder
from omniretrieve.models.registry import declared_languages, default_registry
from omniretrieve.runtime.cache import EmbeddingCache


class CachingEmbedder:
    """An :class:`~omniretrieve.embedder.Embedder` whose ``encode_texts`` goes through an
    :class:`EmbeddingCache`; the model is loaded only when something is not cached."""

    def __init__(
        self, model_id: str, cache: EmbeddingCache, factory: Callable[[str], Any] | None = None
    ) -> None:
        self._model_id = model_id
        self._cache = cache
        self._factory = factory
        self._embedder: Any = None
        self._key: str | None = None
        self._languages: tuple[frozenset[str] | None] | None = None

    @property
    def wrapped(self) -> Any:
        if self._embedder is None:
            if self._factory is not None:
                self._embedder = self._factory(self._model_id)
            else:
                self._embedder = Embedder(self._model_id)
        return self._embedder

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)

    def cache_key(self) -> str:
        """The model's identity for the cache: its fingerprint (changes with the weights),
        read from the checkpoint's files without loading the model."""
        if self._embedder is not None:
            return str(self._embedder.fingerprint)
        if self._key is None:
            source = default_registry().resolve(self._model_id, allow_download=False)
            self._key = f"{source.model_id.replace('/', '--')}-{source.fingerprint()}"
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
        task = kwargs.get("task")
        return self._cache.get_or_compute(
            self.cache_key(),
            f"{task}-{kwargs.get('dimensions')}" if kwargs.get("dimensions") else task,
            texts,
            lambda items: self.wrapped.encode_texts(list(items), **kwargs),
        )
