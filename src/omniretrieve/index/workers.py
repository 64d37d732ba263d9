"""Corpus embedding spread over workers: N local processes, or the workers of an existing Dask
cluster (``distributed``, an optional extra; this module never starts a cluster).

:class:`PooledEmbedder` is an embedder a collection takes like any other: everything but
``encode_texts`` (passage splitting, query encoding, fingerprints) is the local model's, and
``encode_texts`` (what an upsert embeds documents with) cuts its texts in one chunk per worker
and sends them out; each worker loads the model once (by the same id and precision) and returns
its vectors with its model's fingerprint, which must be the local one (the same weights and
precision), else the upsert stops before anything is stored.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any, Protocol

import numpy as np

from omniretrieve.embedder import EmbeddingResult
from omniretrieve.errors import InputError, ModelIntegrityError
from omniretrieve.models.base import EmbeddingModel

_LOADED: dict[tuple[str, str], Any] = {}
"""A worker process's models, by (model id, precision): loaded once per worker."""


def embed_chunk(
    model_id: str, dtype: str, texts: Sequence[str], options: dict[str, Any]
) -> tuple[str, np.ndarray]:
    """Run in a worker: (the model's fingerprint, the vectors of ``texts``)."""
    from omniretrieve.embedder import Embedder

    key = (model_id, dtype)
    if key not in _LOADED:
        _LOADED[key] = Embedder(model_id, dtype=dtype, allow_download=False)
    embedder = _LOADED[key]
    return embedder.fingerprint, embedder.encode_texts(list(texts), **options)


def _limit_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class EmbeddingPool(Protocol):
    size: int
    """How many workers (texts are cut in this many chunks)."""

    def map(
        self, model_id: str, dtype: str, chunks: list[list[str]], options: dict[str, Any]
    ) -> list[tuple[str, np.ndarray]]: ...

    def close(self) -> None: ...


class ProcessPool:
    """``workers`` local processes (spawned, each with its share of the cores)."""

    def __init__(self, workers: int) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise InputError("workers must be a positive integer", field="workers")
        self.size = workers
        threads = max(1, (os.cpu_count() or 1) // workers)
        self._executor = ProcessPoolExecutor(
            workers, mp_context=get_context("spawn"), initializer=_limit_threads,
            initargs=(threads,),
        )  # fmt: skip

    def map(
        self, model_id: str, dtype: str, chunks: list[list[str]], options: dict[str, Any]
    ) -> list[tuple[str, np.ndarray]]:
        futures = [
            self._executor.submit(embed_chunk, model_id, dtype, chunk, options) for chunk in chunks
        ]
        return [future.result() for future in futures]

    def close(self) -> None:
        self._executor.shutdown(cancel_futures=True)


class DaskPool:
    """The workers of a running Dask cluster, reached at ``address`` (``tcp://host:8786``)."""

    def __init__(self, address: str, timeout: float = 30.0) -> None:
        try:
            from distributed import Client
        except ImportError as exc:  # an optional dependency
            raise InputError(
                "embedding on a Dask cluster needs 'distributed': "
                "pip install 'omniretrieve[distributed]'",
                field="dask_scheduler",
            ) from exc
        try:
            self._client = Client(address, timeout=timeout, set_as_default=False)
        except OSError as exc:
            raise InputError(
                f"cannot reach the Dask scheduler at {address}: {exc}", field="dask_scheduler"
            ) from exc
        self.size = max(1, len(self._client.scheduler_info().get("workers", {})))

    def map(
        self, model_id: str, dtype: str, chunks: list[list[str]], options: dict[str, Any]
    ) -> list[tuple[str, np.ndarray]]:
        futures = [
            self._client.submit(embed_chunk, model_id, dtype, chunk, options, pure=False)
            for chunk in chunks
        ]
        return list(self._client.gather(futures))

    def close(self) -> None:
        self._client.close()


class PooledEmbedder:
    """An embedder whose document embedding runs on a pool of workers."""

    def __init__(
        self,
        local: Any,
        pool: EmbeddingPool,
        per_worker: int = 64,
        reference: str | None = None,
    ) -> None:
        """``reference`` is what a worker loads (the id or path the collection names; by
        default the local model's bundled id or its folder)."""
        self._local = local
        self._pool = pool
        source = getattr(local, "source", None)
        if reference is None and source is not None and source.bundled is None and source.path:
            reference = str(source.path)
        self._reference = reference or str(local.model_id)
        self.preferred_chunk = per_worker * pool.size
        """Texts an upsert hands over at once: ``per_worker`` for each worker."""

    @property
    def model_id(self) -> str:
        return str(self._local.model_id)

    @property
    def model(self) -> EmbeddingModel:
        return self._local.model

    @property
    def dimension(self) -> int:
        return int(self._local.dimension)

    @property
    def max_length(self) -> int:
        return int(self._local.max_length)

    @property
    def modalities(self) -> frozenset[str]:
        return frozenset(self._local.modalities)

    @property
    def languages(self) -> frozenset[str] | None:
        return self._local.languages

    @property
    def fingerprint(self) -> str:
        return str(self._local.fingerprint)

    @property
    def dtype(self) -> str:
        return str(self._local.dtype)

    @property
    def outputs(self) -> frozenset[str]:
        return frozenset(self._local.model.outputs)

    def encode(self, inputs: Any, **options: Any) -> EmbeddingResult:
        """In this process (images, and models with learned-sparse or multi-vector
        outputs: the workers return dense vectors)."""
        return self._local.encode(inputs, **options)

    def token_offsets(self, text: str) -> Iterable[tuple[int, int]]:
        return self._local.token_offsets(text)

    def encode_texts(self, texts: Sequence[str], **options: Any) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return self._local.encode_texts(texts, **options)
        size = -(-len(texts) // self._pool.size)  # one chunk per worker
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        found = self._pool.map(self._reference, self.dtype, chunks, dict(options))
        for fingerprint, _ in found:
            if fingerprint != self.fingerprint:
                raise ModelIntegrityError(
                    f"a worker's {self.model_id} is not this one (fingerprint {fingerprint}, "
                    f"here {self.fingerprint}): the workers need the same weights and precision"
                )
        return np.vstack([vectors for _, vectors in found])
