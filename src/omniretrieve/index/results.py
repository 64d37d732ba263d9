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
    passage: tuple[int, int] | None = None
    """Character span of the passage that matched best (None: the document is one passage)."""
    highlights: list[tuple[int, int]] = field(default_factory=list)
    """Character spans of the query's terms in that passage (offsets in the document)."""
    text_start: int = 0
    """Where ``text`` begins in the document (not 0 when ``max_chars`` cut it)."""
    document_chars: int = 0
    """The whole document's length: ``text`` was cut at its end where ``text_start +
    len(text)`` is less (``max_chars`` cuts at word boundaries)."""
    has_image: bool = False
    """The document holds an image (fetch the document for it)."""
    duplicates: list[str] = field(default_factory=list)
    """With ``collapse_duplicates``: the near-identical documents folded into this hit."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.warning is None:
            del data["warning"]
        if not self.duplicates:
            del data["duplicates"]
        data["passage"] = list(self.passage) if self.passage is not None else None
        data["highlights"] = [list(span) for span in self.highlights]
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
