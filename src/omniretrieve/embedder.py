"""The user-facing embedder: any embedding family behind one ``encode``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.embedding_types import (
    EmbeddingType,
    check_embedding_type,
    convert_embeddings,
    to_json_values,
    truncate_dimensions,
)
from omniretrieve.errors import InputError
from omniretrieve.inputs import TextInput, parse_inputs
from omniretrieve.models.base import EmbeddingModel, EncodeOutput, LoadOptions, check_task
from omniretrieve.models.registry import (
    DEFAULT_EMBEDDER,
    ModelSource,
    Registry,
    declared_languages,
    default_registry,
)
from omniretrieve.models.sources import vectors_key
from omniretrieve.runtime.progress import progress_bar
from omniretrieve.text.coverage import language_warnings

PROGRESS_THRESHOLD = 256
"""Inputs above this count show a progress bar when ``show_progress`` is left as None."""


@dataclass(frozen=True)
class EmbeddingResult:
    model: str
    embedding_type: str
    embeddings: np.ndarray | list[str]
    """(n, d) array: float32 for ``float``, int8/uint8 codes for the quantised types, packed
    bits for ``binary``/``ubinary``; a list of base64 strings for ``base64``."""
    truncated: list[bool]
    """Per input: True when the text was cut at the model's maximum length."""
    token_counts: list[int]
    warnings: list[str] = field(default_factory=list)
    """E.g. inputs in a language the model was not trained on (they are still embedded)."""

    @property
    def total_tokens(self) -> int:
        return sum(self.token_counts)

    def __len__(self) -> int:
        return len(self.truncated)

    def to_json(self) -> dict[str, Any]:
        values = to_json_values(self.embeddings)
        return {
            "model": self.model,
            "embedding_type": self.embedding_type,
            "data": [
                {"index": i, "embedding": values[i], "truncated": self.truncated[i]}
                for i in range(len(values))
            ],
            "usage": {"total_tokens": self.total_tokens},
            **({"warnings": self.warnings} if self.warnings else {}),
        }


def check_encode_options(task: str | None, embedding_type: str, normalize: bool) -> None:
    """Validate the options of an encode call before any model work."""
    check_task(task)
    check_embedding_type(embedding_type)
    if embedding_type in ("int8", "uint8") and not normalize:
        raise InputError(
            f"embedding_type {embedding_type} quantises normalised vectors; "
            "use normalize=True or a float type",
            field="embedding_type",
        )


def finish_embeddings(
    model: EmbeddingModel,
    output: EncodeOutput,
    *,
    dimensions: int | None,
    normalize: bool,
    embedding_type: str,
) -> EmbeddingResult:
    """Pooled vectors -> Matryoshka truncation, normalisation and the output type."""
    vectors = truncate_dimensions(
        output.vectors, dimensions, model_dimension=model.dimension, normalize=normalize
    )
    return EmbeddingResult(
        model=model.model_id,
        embedding_type=embedding_type,
        embeddings=convert_embeddings(vectors, embedding_type),
        truncated=output.truncated,
        token_counts=output.token_counts,
    )


class Embedder:
    """Embed texts (and, with image-capable families, images and mixed inputs).

    >>> embedder = Embedder()                       # the bundled all-MiniLM-L6-v2
    >>> result = embedder.encode(["a query"], task="retrieval.query")
    >>> result.embeddings.shape
    (1, 384)
    """

    model: EmbeddingModel
    source: ModelSource
    _languages: frozenset[str] | None = None
    """Set by :meth:`wrap` when the caller knows the languages (the server's pool)."""

    def __init__(
        self,
        model: str | Path = DEFAULT_EMBEDDER,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        token_budget: int = 4096,
        max_batch_size: int = 128,
        allow_download: bool = True,
        registry: Registry | None = None,
    ) -> None:
        options = LoadOptions(
            device=device,
            dtype=dtype,  # type: ignore[arg-type]
            token_budget=token_budget,
            max_batch_size=max_batch_size,
        )
        self.source, self.model = (registry or default_registry()).load(
            model, "embedder", options, allow_download=allow_download
        )

    @classmethod
    def wrap(
        cls,
        model: EmbeddingModel,
        source: ModelSource | None = None,
        languages: frozenset[str] | None = None,
    ) -> Embedder:
        """An Embedder around an already loaded model (the server shares its models)."""
        embedder = cls.__new__(cls)
        embedder.model = model
        embedder.source = source  # type: ignore[assignment]
        embedder._languages = languages
        return embedder

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def fingerprint(self) -> str:
        """Changes when the weights or the precision change; keys on-disk embedding caches."""
        weights = self.source.fingerprint() if self.source is not None else "unverified"
        return vectors_key(self.model_id, weights, self.dtype)

    @property
    def dtype(self) -> str:
        """The precision the model runs in (``auto`` resolved)."""
        return self.model.dtype

    @property
    def dimension(self) -> int:
        return self.model.dimension

    @property
    def max_length(self) -> int:
        return self.model.max_length

    @property
    def modalities(self) -> frozenset[str]:
        return self.model.modalities

    def encode(
        self,
        inputs: Any,
        *,
        task: str | None = None,
        instruction: str | None = None,
        dimensions: int | None = None,
        normalize: bool = True,
        embedding_type: EmbeddingType | str = "float",
        show_progress: bool | None = None,
        check_languages: bool = True,
    ) -> EmbeddingResult:
        """Embed ``inputs`` (a string, a list of strings, or ``{"text"|"image"}`` items).

        Texts longer than the model's maximum length are truncated and flagged in
        ``result.truncated``. ``dimensions`` truncates (Matryoshka) and re-normalises when
        ``normalize`` is true. The quantised types (int8, uint8) need normalised output.
        ``check_languages`` warns (``result.warnings``) about texts in languages the model was
        not trained on, when the model declares its languages.
        """
        check_encode_options(task, embedding_type, normalize)
        parsed = parse_inputs(inputs)
        if show_progress is None:
            show_progress = len(parsed) > PROGRESS_THRESHOLD
        with progress_bar(len(parsed), f"embedding ({self.model_id})", enabled=show_progress) as cb:
            output = self.model.encode(parsed, task=task, instruction=instruction, progress=cb)
        result = finish_embeddings(
            self.model,
            output,
            dimensions=dimensions,
            normalize=normalize,
            embedding_type=embedding_type,
        )
        if check_languages:
            result.warnings.extend(self.language_warnings(parsed))
        return result

    @property
    def languages(self) -> frozenset[str] | None:
        """Languages the model was trained on, when it declares them (None: not declared)."""
        if self._languages is not None:
            return self._languages
        return declared_languages(self.model, self.source)

    def language_warnings(self, inputs: Sequence[Any]) -> list[str]:

        texts = [(i, item.text) for i, item in enumerate(inputs) if isinstance(item, TextInput)]
        return language_warnings(self.model_id, self.languages, texts)

    def token_offsets(self, text: str) -> Iterator[tuple[int, int]]:
        """Character spans of the model's tokens in ``text`` (for splitting passages)."""
        return self.model.token_offsets(text)

    def encode_texts(self, texts: Sequence[str], **kwargs: Any) -> np.ndarray:
        """Shorthand: float32 (n, d) normalised vectors of plain texts (no language check)."""
        kwargs.setdefault("check_languages", False)
        result = self.encode(list(texts), **kwargs)
        assert isinstance(result.embeddings, np.ndarray)
        return result.embeddings
