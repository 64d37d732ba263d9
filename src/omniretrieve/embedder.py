"""The user-facing embedder: any embedding family behind one ``encode``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
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
from omniretrieve.models.base import (
    EmbeddingModel,
    EncodeOutput,
    LoadOptions,
    MultiEncodeOutput,
    check_outputs,
    check_task,
    encode_asked,
    per_token_only,
)
from omniretrieve.models.registry import (
    DEFAULT_EMBEDDER,
    ModelSource,
    Registry,
    declared_languages,
    default_registry,
)
from omniretrieve.models.sources import vectors_key
from omniretrieve.multi_vector import SparseEmbedding
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
    sparse: list[SparseEmbedding] | None = None
    """With ``return_sparse``: per input, its learned token weights (with their tokens)."""
    multivectors: list[np.ndarray | list[str]] | None = None
    """With ``return_multivector``: per input, one vector per token, in ``embedding_type``
    (a (tokens, d) array, or a list of base64 strings)."""
    dense: bool = True
    """False for a model with no single-vector output (ColPali): ``embeddings`` is empty and
    the JSON rows carry ``embeddings`` (per token) only."""

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
                {
                    "index": i,
                    **({"embedding": values[i]} if self.dense else {}),
                    "truncated": self.truncated[i],
                    **self.extra_outputs_json(i),
                }
                for i in range(len(self.truncated))
            ],
            "usage": {"total_tokens": self.total_tokens},
            **({"warnings": self.warnings} if self.warnings else {}),
        }

    def extra_outputs_json(self, index: int) -> dict[str, Any]:
        """Input ``index``'s sparse and multi-vector outputs, where asked for: ``sparse``
        (``{"indices", "values", "tokens"}``) and ``embeddings`` (Jina's per-token shape)."""
        extra: dict[str, Any] = {}
        if self.sparse is not None:
            extra["sparse"] = self.sparse[index].to_json()
        if self.multivectors is not None:
            extra["embeddings"] = to_json_values(self.multivectors[index])
        return extra


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


def requested_outputs(
    model: EmbeddingModel, return_sparse: bool, return_multivector: bool
) -> frozenset[str]:
    """The outputs an encode call asks of ``model`` (dense always); an error naming the flag
    when the model has no such output."""
    for flag, value in (
        ("return_sparse", return_sparse),
        ("return_multivector", return_multivector),
    ):
        if not isinstance(value, bool):
            raise InputError(f"{flag} must be true or false", field=flag)
    asked = {"dense"} & model.outputs
    if not asked and not return_multivector:
        raise per_token_only(model)
    if return_sparse:
        asked.add("sparse")
    if return_multivector:
        asked.add("multivector")
    check_outputs(model, frozenset(asked))
    return frozenset(asked)


def with_extra_outputs(
    model: EmbeddingModel,
    result: EmbeddingResult,
    multi: MultiEncodeOutput,
    embedding_type: str,
) -> EmbeddingResult:
    """``result`` with the sparse (tokens named) and multi-vector outputs of ``multi``."""
    sparse = None
    if multi.sparse is not None:
        sparse = [
            replace(item, tokens=tuple(model.token_strings(item.indices.tolist())))
            for item in multi.sparse
        ]
    multivectors = None
    if multi.multivectors is not None:
        multivectors = [convert_embeddings(m, embedding_type) for m in multi.multivectors]
    return replace(result, sparse=sparse, multivectors=multivectors)


def result_of(
    model: EmbeddingModel,
    multi: MultiEncodeOutput,
    *,
    dimensions: int | None,
    normalize: bool,
    embedding_type: str,
) -> EmbeddingResult:
    """The result of one pass: the dense vectors finished (Matryoshka, normalisation, type;
    none for a model that gives one vector per token only) and the other outputs asked."""
    if multi.dense is not None:
        output = EncodeOutput(multi.dense, multi.truncated, multi.token_counts)
        result = finish_embeddings(
            model,
            output,
            dimensions=dimensions,
            normalize=normalize,
            embedding_type=embedding_type,
        )
    else:
        result = EmbeddingResult(
            model=model.model_id,
            embedding_type=embedding_type,
            embeddings=np.zeros((len(multi.truncated), 0), dtype=np.float32),
            truncated=multi.truncated,
            token_counts=multi.token_counts,
            dense=False,
        )
    if multi.sparse is None and multi.multivectors is None:
        return result
    return with_extra_outputs(model, result, multi, embedding_type)


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
    def outputs(self) -> frozenset[str]:
        """What the model returns per input (:data:`~omniretrieve.multi_vector.OUTPUTS`)."""
        return self.model.outputs

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
        return_sparse: bool = False,
        return_multivector: bool = False,
    ) -> EmbeddingResult:
        """Embed ``inputs`` (a string, a list of strings, or ``{"text"|"image"}`` items).

        Texts longer than the model's maximum length are truncated and flagged in
        ``result.truncated``. ``dimensions`` truncates (Matryoshka) and re-normalises when
        ``normalize`` is true. The quantised types (int8, uint8) need normalised output.
        ``check_languages`` warns (``result.warnings``) about texts in languages the model was
        not trained on, when the model declares its languages.

        ``return_sparse`` and ``return_multivector`` (models with those heads: BGE-M3) add
        each input's learned token weights (``result.sparse``) and one vector per token
        (``result.multivectors``, in ``embedding_type``), from the same pass.
        """
        check_encode_options(task, embedding_type, normalize)
        outputs = requested_outputs(self.model, return_sparse, return_multivector)
        parsed = parse_inputs(inputs)
        if show_progress is None:
            show_progress = len(parsed) > PROGRESS_THRESHOLD
        with progress_bar(len(parsed), f"embedding ({self.model_id})", enabled=show_progress) as cb:
            multi = encode_asked(
                self.model, parsed, outputs, task=task, instruction=instruction, progress=cb
            )
        result = result_of(
            self.model,
            multi,
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
