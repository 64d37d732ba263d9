"""What every model family provides: embedding models and rerank models.

A family turns a checkpoint into an :class:`EmbeddingModel` or a :class:`RerankModel`. The
user-facing :class:`omniretrieve.Embedder` and :class:`omniretrieve.Reranker` add the parts that
are the same for every family (input parsing, dimensions, output types, top-n, progress).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.inputs import Input
from omniretrieve.multi_vector import SparseEmbedding
from omniretrieve.runtime.precision import resolve_dtype

if TYPE_CHECKING:
    from omniretrieve.models.sources import ModelSource

ProgressCallback = Callable[[int], None]
"""Called with the number of items just finished."""

Dtype = Literal["auto", "float32", "bfloat16", "float16", "int8"]
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16", "int8")
"""``auto``: what :func:`~omniretrieve.runtime.precision.resolve_dtype` picks for the family on
the device; ``int8`` only for the sentence-encoder family, on CPU."""

TASKS: tuple[str, ...] = (
    "retrieval.query",
    "retrieval.passage",
    "text-matching",
    "classification",
    "separation",
)
"""Task names accepted everywhere (the Jina API's). Families map them to their own prompts."""


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise InputError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}", field="dtype")
    return dtype


def check_task(task: str | None) -> str | None:
    if task is not None and task not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}; got {task!r}", field="task")
    return task


@dataclass(frozen=True)
class LoadOptions:
    device: str = "cpu"
    dtype: Dtype = "auto"
    token_budget: int = 4096
    max_batch_size: int = 128
    embedding_model: EmbeddingModel | None = None
    """For scorers built on an embedder (the hybrid reranker): the one to share, if loaded."""


@dataclass(frozen=True)
class EncodeOutput:
    vectors: np.ndarray
    """(n, dimension) float32, as the model pools them (not re-normalised)."""
    truncated: list[bool]
    token_counts: list[int]


@dataclass(frozen=True)
class MultiEncodeOutput:
    """What one pass gives for the outputs asked (None: not asked)."""

    dense: np.ndarray | None
    """(n, dimension) float32, as the model pools them."""
    sparse: list[SparseEmbedding] | None
    """Per input, its learned token weights."""
    multivectors: list[np.ndarray] | None
    """Per input, one (unit) vector per token it keeps: (tokens, dimension) float32."""
    truncated: list[bool]
    token_counts: list[int]


@dataclass(frozen=True)
class ScoreOutput:
    scores: np.ndarray
    """(n,) float32 relevance scores in [0, 1], in document order."""
    truncated: list[bool]
    total_tokens: int
    raw_scores: np.ndarray | None = None
    """(n,) the scores before the family's last squashing (a logit; see ``docs/models.md``),
    where the family has one."""


class EmbeddingModel(ABC):
    model_id: str
    family: str
    dimension: int
    max_length: int
    modalities: frozenset[str]
    normalized: bool
    """Whether the checkpoint's own pipeline L2-normalises its output."""
    named_instructions: Mapping[str, str] = MappingProxyType({})
    """Task names this family turns into its model card's query instructions (BGE-Code's
    ``CosQA``, ``Text2SQL``...); any other ``instruction`` is used as given."""
    dtype: str = "float32"
    """The precision the loaded model runs in (``auto`` resolved)."""
    multivector_reduce: str = "mean"
    """How its MaxSim reduces over a query's vectors (:func:`omniretrieve.multi_vector.maxsim`)."""
    outputs: frozenset[str] = frozenset({"dense"})
    """What it returns per input (:data:`omniretrieve.multi_vector.OUTPUTS`): families with
    learned-sparse or per-token heads add theirs and implement :meth:`encode_outputs`."""

    @classmethod
    def runs_in(cls, requested: str, device: str) -> str:
        """The precision ``requested`` resolves to for this family on ``device``, known without
        loading (it keys caches of computed vectors). Families with a faster path override."""
        if requested == "int8":
            raise InputError(
                f"dtype int8 is available for sentence encoders (BERT-like) only, not the "
                f"{cls.family} family",
                field="dtype",
            )
        return resolve_dtype(requested, device)

    @abstractmethod
    def encode(
        self,
        inputs: Sequence[Input],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> EncodeOutput: ...

    def encode_outputs(
        self,
        inputs: Sequence[Input],
        outputs: frozenset[str],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> MultiEncodeOutput:
        """The ``outputs`` asked for (of :attr:`outputs`), from one pass over ``inputs``."""
        check_outputs(self, outputs)  # a single-vector family: dense is all it has
        return encode_asked(
            self, inputs, outputs, task=task, instruction=instruction, progress=progress
        )

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        """The tokens of ``ids`` as the tokenizer writes them (sparse outputs name them)."""
        raise NotImplementedError(f"{self.family} has no token vocabulary")

    @abstractmethod
    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text costs after truncation, special tokens included."""

    @abstractmethod
    def token_offsets(self, text: str) -> Iterator[tuple[int, int]]:
        """Character spans of the units the model reads in ``text`` (special tokens left out),
        in order: what passage splitting counts against ``max_length``."""

    @classmethod
    @abstractmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> EmbeddingModel: ...


def encode_asked(
    model: EmbeddingModel,
    inputs: Sequence[Input],
    outputs: frozenset[str],
    *,
    task: str | None = None,
    instruction: str | None = None,
    progress: ProgressCallback | None = None,
) -> MultiEncodeOutput:
    """The ``outputs`` asked of ``model``: the dense path (``encode``) alone when that is all
    that is asked, else one pass of ``encode_outputs``."""
    if outputs != {"dense"}:
        return model.encode_outputs(
            inputs, outputs, task=task, instruction=instruction, progress=progress
        )
    output = model.encode(inputs, task=task, instruction=instruction, progress=progress)
    return MultiEncodeOutput(output.vectors, None, None, output.truncated, output.token_counts)


def check_outputs(model: EmbeddingModel, outputs: frozenset[str]) -> None:
    """An error naming the request flag (``return_sparse``...) of an output ``model`` lacks."""
    missing = sorted(outputs - model.outputs)
    if missing:
        raise InputError(
            f"{model.model_id} ({model.family} family) returns no {missing[0]} output; "
            "BGE-M3 checkpoints return sparse and multi-vector outputs",
            field=f"return_{missing[0]}",
        )


def per_token_only(model: EmbeddingModel) -> InputError:
    """The error for a single vector asked of a model that gives one per token only."""
    return InputError(
        f"{model.model_id} ({model.family} family) gives one vector per token, not one per "
        "input: ask for return_multivector",
        field="return_multivector",
    )


class PerTokenEmbedder(EmbeddingModel):
    """The base of families that give one vector per token and no single vector (ColBERT,
    ColPali): :meth:`encode` refuses, :meth:`encode_outputs` gives the vectors."""

    outputs = frozenset({"multivector"})
    normalized = True
    multivector_reduce = "sum"
    tokenizer: Any

    def encode(
        self,
        inputs: Sequence[Input],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> EncodeOutput:
        raise per_token_only(self)

    def token_offsets(self, text: str) -> Iterator[tuple[int, int]]:
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return iter([(a, b) for a, b in encoded["offset_mapping"] if b > a])


class RerankModel(ABC):
    model_id: str
    family: str
    modalities: frozenset[str]

    @abstractmethod
    def score(
        self,
        query: Input,
        documents: Sequence[Input],
        *,
        progress: ProgressCallback | None = None,
    ) -> ScoreOutput: ...

    def score_many(
        self,
        requests: Sequence[tuple[Input, Sequence[Input]]],
        *,
        progress: ProgressCallback | None = None,
    ) -> list[ScoreOutput]:
        """Several (query, documents) requests; one output each. Families whose pairs are
        scored independently override this to share model batches across requests (the
        server merges concurrent requests); the default scores each request on its own, as a
        family whose scores depend on the whole set must."""
        return [self.score(query, documents, progress=progress) for query, documents in requests]

    @classmethod
    @abstractmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> RerankModel: ...


class PairwiseRerankModel(RerankModel):
    """A reranker whose pairs are scored independently of each other (m0, cross-encoders):
    it implements :meth:`score_many`, sharing model batches across requests, and one request
    is a call of it."""

    def score(
        self,
        query: Input,
        documents: Sequence[Input],
        *,
        progress: ProgressCallback | None = None,
    ) -> ScoreOutput:
        return self.score_many([(query, documents)], progress=progress)[0]

    @abstractmethod
    def score_many(
        self,
        requests: Sequence[tuple[Input, Sequence[Input]]],
        *,
        progress: ProgressCallback | None = None,
    ) -> list[ScoreOutput]: ...


def score_token_batches(
    pairs: Sequence[Mapping[str, list[int]]],
    truncated: Sequence[bool],
    sizes: Sequence[int],
    tokenizer: Any,
    options: LoadOptions,
    forward: Callable[[dict[str, Any]], Any],
    progress: ProgressCallback | None = None,
) -> list[ScoreOutput]:
    """Several requests' pairs of token ids (in request order, ``sizes`` pairs each) scored
    together, one output per request: pairs planned into batches by token budget, padded by
    ``tokenizer`` (on its own side), moved to the device and scored by ``forward`` (padded
    inputs -> one raw score per row, squashed by :func:`sigmoid`) under inference mode."""
    import torch

    from omniretrieve.runtime.batching import plan_batches

    lengths = [len(p["input_ids"]) for p in pairs]
    scores = np.empty(len(pairs), dtype=np.float32)
    for batch in plan_batches(
        lengths, token_budget=options.token_budget, max_batch_size=options.max_batch_size
    ):
        padded = tokenizer.pad([pairs[i] for i in batch], padding=True, return_tensors="pt")
        inputs = {k: v.to(options.device) for k, v in padded.items()}
        with torch.inference_mode():
            scores[batch] = forward(inputs).float().cpu().numpy()
        if progress is not None:
            progress(len(batch))
    return split_scores(scores, truncated, lengths, sizes)


def sigmoid(values: np.ndarray) -> np.ndarray:
    """The logistic function, in float64, returned as float32."""
    return (1.0 / (1.0 + np.exp(-np.asarray(values, dtype=np.float64)))).astype(np.float32)


def split_scores(
    raw: np.ndarray,
    truncated: Sequence[bool],
    tokens: Sequence[int],
    sizes: Sequence[int],
    relevance: Callable[[np.ndarray], np.ndarray] = sigmoid,
) -> list[ScoreOutput]:
    """Per-pair raw scores, truncation flags and token counts of several requests' pairs (in
    request order) -> one output per request of ``sizes`` pairs, its relevance scores
    ``relevance(raw)``."""
    scores = relevance(raw)
    outputs, start = [], 0
    for size in sizes:
        end = start + size
        outputs.append(
            ScoreOutput(
                scores=scores[start:end],
                truncated=list(truncated[start:end]),
                total_tokens=sum(tokens[start:end]),
                raw_scores=raw[start:end],
            )
        )
        start = end
    return outputs
