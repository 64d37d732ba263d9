"""What collection calls return: hits, first-stage lists, upsert reports."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SearchHit:
    doc_id: str
    score: float
    text: str
    metadata: dict[str, Any]
    scores: dict[str, float] = field(default_factory=dict)
    """Per stage: sparse, dense:<model>, fused, rerank."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FirstStage:
    """One query's lists before fusion (see :meth:`Collection.first_stage_runs`)."""

    runs: dict[str, dict[str, float]]
    """``sparse`` and ``dense:<model>``: document id -> score."""
    fields: tuple[str, ...]
    """The vector fields this query used (routing may leave some out)."""


@dataclass(frozen=True)
class UpsertReport:
    added: int
    updated: int
    unchanged: int
    embedded_passages: int
