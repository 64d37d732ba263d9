"""Dataset loaders. BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

Malformed files raise :class:`DatasetError` naming the file, the line and the field.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omniretrieve.errors import DatasetError as DatasetError  # re-exported
from omniretrieve.jsonl import read_jsonl


@dataclass(frozen=True)
class Document:
    doc_id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    image: str | None = None
    """Path of the document's image (page screenshots, photos), resolved against the dataset."""

    @property
    def full_text(self) -> str:
        """Title and body as one text, the usual BEIR input to BM25 and embedders."""
        return f"{self.title} {self.text}".strip() if self.title else self.text

    @property
    def empty(self) -> bool:
        """No text and no image: nothing a search could match (real corpora have a few)."""
        return not self.full_text.strip() and self.image is None


@dataclass(frozen=True)
class BeirDataset:
    name: str
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str

    def judged_queries(self) -> dict[str, str]:
        """The queries that have at least one judgment in this split."""
        return {qid: text for qid, text in self.queries.items() if qid in self.qrels}


def _require(record: dict[str, Any], key: str, path: Path, number: int) -> str:
    value = record.get(key)
    if value is None:
        raise DatasetError(f"{path}:{number}: missing field {key!r}", field=key)
    return str(value)


def load_corpus(path: Path) -> dict[str, Document]:
    corpus: dict[str, Document] = {}
    for number, record in read_jsonl(path):
        doc_id = _require(record, "_id", path, number)
        metadata = record.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise DatasetError(f"{path}:{number}: metadata must be an object", field="metadata")
        image = record.get("image")
        if image is not None and not isinstance(image, str):
            raise DatasetError(f"{path}:{number}: image must be a path", field="image")
        text = str(record.get("text") or "")
        corpus[doc_id] = Document(
            doc_id,
            text,
            str(record.get("title") or ""),
            metadata,
            str(path.parent / image) if image is not None else None,
        )
    return corpus


def load_queries(path: Path) -> dict[str, str]:
    return {
        _require(record, "_id", path, number): _require(record, "text", path, number)
        for number, record in read_jsonl(path)
    }


GROUP_FIELDS: tuple[str, ...] = ("group", "xquad_id")
"""Query metadata naming the question a query belongs to (its translations share it)."""


def load_query_groups(path: Path) -> dict[str, str]:
    """Query id -> group, for queries whose metadata names one (``group``, or XQuAD-R's
    ``xquad_id``): queries of one group are kept together when queries are split in folds."""
    groups: dict[str, str] = {}
    for number, record in read_jsonl(path):
        metadata = record.get("metadata")
        if not isinstance(metadata, dict):
            continue
        for key in GROUP_FIELDS:
            if metadata.get(key) is not None:
                groups[_require(record, "_id", path, number)] = str(metadata[key])
                break
    return groups


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise DatasetError(f"{path} does not exist", field=str(path))
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise DatasetError(
                    f"{path}:{number}: expected query-id, corpus-id, score", field=str(path)
                )
            try:
                score = int(float(row[2]))
            except ValueError as exc:
                raise DatasetError(f"{path}:{number}: score {row[2]!r} is not a number") from exc
            qrels.setdefault(row[0], {})[row[1]] = score
    return qrels


def load_beir(path: str | Path, split: str = "test") -> BeirDataset:
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist", field="dataset")
    return BeirDataset(
        name=root.name,
        corpus=load_corpus(root / "corpus.jsonl"),
        queries=load_queries(root / "queries.jsonl"),
        qrels=load_qrels(root / "qrels" / f"{split}.tsv"),
        split=split,
    )
