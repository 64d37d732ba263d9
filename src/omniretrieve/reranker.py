"""The user-facing reranker: any rerank family behind one ``rerank``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.inputs import ImageInput, Input, MixedInput, TextInput, parse_input, parse_inputs
from omniretrieve.models.base import (
    EmbeddingModel,
    LoadOptions,
    RerankModel,
    ScoreOutput,
)
from omniretrieve.models.registry import (
    DEFAULT_RERANKER,
    ModelSource,
    Registry,
    default_registry,
)
from omniretrieve.runtime.progress import progress_bar

PROGRESS_THRESHOLD = 256


@dataclass(frozen=True)
class RerankResult:
    index: int
    """Position of the document in the list that was sent."""
    relevance_score: float
    """In [0, 1]; higher is more relevant."""
    document: Input | None = None
    truncated: bool = False
    unread: bool = False
    """The model could not read this document (an image without text, for a text-only model):
    it is ranked after the scored ones with a score of 0."""
    raw_score: float | None = None
    """Asked for with ``raw_scores``: the score before the model's last squashing (a logit;
    what it is per family: ``docs/models.md``); None for an unread document."""


@dataclass(frozen=True)
class RerankResponse:
    model: str
    results: list[RerankResult]
    total_tokens: int
    notes: list[str] = field(default_factory=list)
    ocr_positions: list[int] = field(default_factory=list)
    """Inputs a text-only model read through OCR: 0 is the query, i + 1 is documents[i]."""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "usage": {"total_tokens": self.total_tokens},
            "results": [
                {
                    "index": r.index,
                    "relevance_score": r.relevance_score,
                    **({"document": document_json(r.document)} if r.document is not None else {}),
                    "truncated": r.truncated,
                    **({"unread": True} if r.unread else {}),
                    **({"raw_score": r.raw_score} if r.raw_score is not None else {}),
                }
                for r in self.results
            ],
        }


def instruction_argument(model: RerankModel, instruction: str | None) -> dict[str, Any]:
    """The keyword argument that passes ``instruction`` to ``model.score``: none when it is
    None; an error naming ``instruction`` when the model takes none and one is given."""
    if instruction is None:
        return {}
    if not isinstance(instruction, str):
        raise InputError("instruction must be a text", field="instruction")
    if getattr(model, "takes_instruction", False):
        return {"instruction": instruction}
    if instruction.strip():
        raise InputError(
            f"{model.model_id} ({model.family} family) takes no instruction; LLM yes/no "
            "rerankers (Qwen3-Reranker) do",
            field="instruction",
        )
    return {}


def check_top_n(top_n: int | None) -> None:
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
        raise InputError(f"top_n must be a positive integer; got {top_n!r}", field="top_n")


def build_rerank_response(
    model_id: str,
    output: ScoreOutput,
    documents: list[Input],
    *,
    top_n: int | None,
    return_documents: bool,
    unread: Sequence[int] = (),
    raw_scores: bool = False,
) -> RerankResponse:
    """Scores of the read documents (``documents`` less the ``unread`` positions, in order)
    -> results best first (stable for ties), the unread ones after them in their order, cut
    to ``top_n``; each with its raw score when ``raw_scores`` asks."""
    if raw_scores and output.raw_scores is None:
        raise InputError(f"{model_id} has no raw scores", field="raw_scores")
    unread_set = set(unread)
    read = [i for i in range(len(documents)) if i not in unread_set]
    scores = np.full(len(documents), -1.0)
    raw: dict[int, float] = {}
    truncated = [False] * len(documents)
    for position, score, cut in zip(read, output.scores, output.truncated, strict=True):
        scores[position], truncated[position] = float(score), bool(cut)
    if raw_scores and output.raw_scores is not None:
        raw = {p: float(x) for p, x in zip(read, output.raw_scores, strict=True)}
    order = np.argsort(-scores, kind="stable")
    if top_n is not None:
        order = order[:top_n]
    results = [
        RerankResult(
            index=int(i),
            relevance_score=0.0 if i in unread_set else float(scores[i]),
            document=documents[i] if return_documents else None,
            truncated=truncated[i],
            unread=i in unread_set,
            raw_score=raw.get(int(i)),
        )
        for i in order
    ]
    warnings = [
        f"documents[{i}] is an image in which OCR found no text; {model_id} reads text only, "
        "so it is ranked last, unscored"
        for i in sorted(unread_set)
    ]
    return RerankResponse(
        model=model_id, results=results, total_tokens=output.total_tokens, warnings=warnings
    )


def document_json(document: Input) -> dict[str, Any]:
    if isinstance(document, TextInput):
        return {"text": document.text}
    if isinstance(document, MixedInput):
        return {"text": document.text, "image": _image_ref(document.image)}
    return {"image": _image_ref(document)}


def _image_ref(image: ImageInput) -> str:
    return image.source if isinstance(image.source, str) else f"<{len(image.source)} bytes>"


class Reranker:
    """Score documents against a query and return them best first.

    With no model configured this is ``omniretrieve-hybrid-reranker``, which needs only the
    bundled weights; pass a cross-encoder or VLM reranker id/directory to replace it.
    """

    model: RerankModel
    source: ModelSource

    def __init__(
        self,
        model: str | Path = DEFAULT_RERANKER,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        token_budget: int = 4096,
        max_batch_size: int = 128,
        allow_download: bool = True,
        embedding_model: EmbeddingModel | None = None,
        registry: Registry | None = None,
    ) -> None:
        options = LoadOptions(
            device=device,
            dtype=dtype,  # type: ignore[arg-type]
            token_budget=token_budget,
            max_batch_size=max_batch_size,
            embedding_model=embedding_model,
        )
        self.source, self.model = (registry or default_registry()).load(
            model, "reranker", options, allow_download=allow_download
        )

    @classmethod
    def wrap(cls, model: RerankModel, source: ModelSource | None = None) -> Reranker:
        """A Reranker around an already loaded model (the server shares its models)."""
        reranker = cls.__new__(cls)
        reranker.model = model
        reranker.source = source  # type: ignore[assignment]
        return reranker

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def rerank(
        self,
        query: Any,
        documents: Any,
        *,
        top_n: int | None = None,
        return_documents: bool = True,
        show_progress: bool | None = None,
        instruction: str | None = None,
        raw_scores: bool = False,
    ) -> RerankResponse:
        """Rank ``documents`` for ``query``; ``top_n`` keeps the best n (all when None).
        ``instruction`` goes to rerankers that take one (LLM yes/no rerankers; None: their
        default); the others refuse a non-empty one. ``raw_scores`` adds each result's
        ``raw_score``, the score before the model's last squashing (TEI's name)."""
        parsed_query = parse_input(query, field="query")
        parsed_docs = parse_inputs(documents, field="documents")
        check_top_n(top_n)
        extra = instruction_argument(self.model, instruction)
        if show_progress is None:
            show_progress = len(parsed_docs) > PROGRESS_THRESHOLD
        with progress_bar(
            len(parsed_docs), f"reranking ({self.model_id})", enabled=show_progress
        ) as cb:
            output = self.model.score(parsed_query, parsed_docs, progress=cb, **extra)
        return build_rerank_response(
            self.model_id,
            output,
            parsed_docs,
            top_n=top_n,
            return_documents=return_documents,
            raw_scores=raw_scores,
        )
