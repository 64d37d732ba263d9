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
    """Per stage that ran for this hit: sparse, dense:<model>, fused, rerank."""
    warning: str | None = None
    """Set when a stage could not read this hit (e.g. not reranked: an image without text for
    a text-only reranker); the hit keeps its first-stage place."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.warning is None:
            del data["warning"]
        return data


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
