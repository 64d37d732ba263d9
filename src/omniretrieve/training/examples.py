"""Training examples: (query, positive[, negatives]) with the documents they come from.

Whatever the source (a BEIR split's qrels, a pairs file, a query log of clicks, pseudo-queries
cut from a corpus), training sees one :class:`TrainingData`: the pairs, the corpus that
negatives are mined from, and every labelled positive of each query, so that mining never
hands a labelled positive back as a negative.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class Pair:
    query: str
    positive: str
    """The positive's text as training sees it (a pseudo-query's document without the query)."""
    positive_id: str | None = None
    negatives: tuple[str, ...] = ()
    negative_ids: tuple[str, ...] = ()
    margins: tuple[float, ...] = ()
    """Teacher score of the positive minus that of each negative (margin distillation)."""


@dataclass(frozen=True)
class DataFile:
    """A file training read, recorded with its hash in ``training.json``."""

    path: str
    sha256: str

    @classmethod
    def of(cls, path: Path) -> DataFile:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        return cls(str(path.resolve()), digest.hexdigest())


@dataclass(frozen=True)
class TrainingData:
    pairs: list[Pair]
    corpus: dict[str, str] = field(default_factory=dict)
    """Document id -> text: what negatives are mined from (empty: no mining possible)."""
    positives: dict[str, frozenset[str]] = field(default_factory=dict)
    """Query text -> the ids of all its labelled positives."""
    supervision: Literal["labels", "clicks", "pseudo-queries"] = "labels"
    files: tuple[DataFile, ...] = ()
    description: str = ""

    def with_pairs(self, pairs: list[Pair]) -> TrainingData:
        return replace(self, pairs=pairs)

    def with_files(self, files: tuple[DataFile, ...], description: str) -> TrainingData:
        return replace(self, files=files, description=description)

    def labelled(self, query: str) -> frozenset[str]:
        return self.positives.get(query, frozenset())

    def summary(self) -> dict[str, object]:
        return {
            "source": self.description,
            "supervision": self.supervision,
            "pairs": len(self.pairs),
            "queries": len({p.query for p in self.pairs}),
            "corpus_documents": len(self.corpus),
            "with_negatives": sum(1 for p in self.pairs if p.negatives),
            "files": [{"path": f.path, "sha256": f.sha256} for f in self.files],
        }


def positives_by_query(pairs: list[Pair]) -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for pair in pairs:
        if pair.positive_id is not None:
            found.setdefault(pair.query, set()).add(pair.positive_id)
    return {query: frozenset(ids) for query, ids in found.items()}
