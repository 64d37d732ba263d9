"""What the stages of a search hand each other: the plan, and a state per query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from omniretrieve.index.queries import SearchQuery


@dataclass(frozen=True)
class RerankChoice:
    """What a search's rerank stage does."""

    model_id: str
    share: float
    """The first stage's share of the reranked score (1: no rerank)."""
    want: int
    """Candidates the first stage hands over (the rerank's, when it reranks)."""
    instruction: str | None = None
    """For a reranker that takes one."""

    @property
    def active(self) -> bool:
        return self.share < 1.0


@dataclass(frozen=True)
class Diversity:
    """What a search's diversity stage does (nothing by default)."""

    lam: float | None = None
    """MMR's lambda (None: no MMR)."""
    collapse_duplicates: bool = False

    @property
    def active(self) -> bool:
        return self.lam is not None or self.collapse_duplicates


@dataclass(frozen=True)
class SearchPlan:
    queries: tuple[SearchQuery, ...]
    mode: str | None
    """dense, sparse or hybrid; None where the caller supplied the first stage."""
    fields: tuple[str, ...]
    """The vector fields in play (before per-query routing)."""
    routing: bool
    """Whether each query uses only the fields whose model covers its language."""
    allowed: set[str] | None
    """The ids the filter admits, where the vector store cannot filter itself."""
    filter: Mapping[str, Any] | None
    filter_key: str | None
    depth: int
    """Each first-stage list's length."""
    instructions: Mapping[str, str | None]
    """Per vector field, the query instruction its embedder gets (None: its default)."""
    top_k: int
    rerank: RerankChoice
    diversity: Diversity
    fusion_weights: Sequence[float] | None
    fusion_method: str
    snippets: bool
    max_chars: int | None
    supplied: tuple[Mapping[str, float], ...] | None = None
    """Per query, a first stage computed elsewhere (document id -> score)."""
    outputs: tuple[str, ...] | None = None
    """Which of the models' lists the search uses (``dense``, ``sparse``, ``multivector``);
    None: every list each model gives."""


@dataclass
class QueryState:
    query: SearchQuery
    lists: dict[str, dict[str, float]]
    """Per stage that ran, document id -> its score there: ``sparse``, ``dense:<model>``,
    ``candidates`` (a supplied first stage), then ``fused``, ``rerank``, ``mmr``; a hit's
    ``scores`` are read from here."""
    used: tuple[str, ...] = ()
    """The vector fields this query used (routing by language may leave some out)."""
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    """The query's vector per field that read it."""
    ranked: list[tuple[str, float]] = field(default_factory=list)
    """The ranking so far (document id, score), best first."""
    warnings: dict[str, str] = field(default_factory=dict)
    """Document id -> why a stage could not read it."""
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    """Document id -> the near-identical documents folded into it."""
