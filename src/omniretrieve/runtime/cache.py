"""On-disk cache of computed embeddings, keyed by (model fingerprint, task, content hash).

A second encode of the same texts by the same weights is a file read. Entries are written to a
temporary file and renamed into place, so an interrupted run never leaves a torn entry.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.eval.datasets import content_hash


def default_cache_dir() -> Path:
    override = os.environ.get("OMNIRETRIEVE_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "omniretrieve"


class EmbeddingCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_cache_dir()) / "embeddings"

    def path_for(self, model_key: str, task: str | None, texts: Sequence[str]) -> Path:
        return self.root / model_key / f"{task or 'none'}-{content_hash(list(texts))[:32]}.npy"

    def get_or_compute(
        self,
        model_key: str,
        task: str | None,
        texts: Sequence[str],
        compute: Callable[[Sequence[str]], np.ndarray],
    ) -> np.ndarray:
        target = self.path_for(model_key, task, texts)
        if target.is_file():
            cached = np.load(target)
            if cached.shape[0] == len(texts):
                return cached
        vectors = np.asarray(compute(texts), dtype=np.float32)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False) as tmp:
            np.save(tmp, vectors)
        os.replace(tmp.name, target)
        return vectors


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
                from omniretrieve.embedder import Embedder

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
            from omniretrieve.models.registry import default_registry

            source = default_registry().resolve(self._model_id, allow_download=False)
            self._key = f"{source.model_id.replace('/', '--')}-{source.fingerprint()}"
        return self._key

    @property
    def languages(self) -> frozenset[str] | None:
        """The model's declared training languages, read without loading it."""
        if self._embedder is not None:
            return self._embedder.languages
        if self._languages is None:  # resolve once: it reads the checkpoint's file list
            from omniretrieve.models.registry import declared_languages, default_registry

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
