"""What an evaluation reads: datasets, their tasks and documents, and the readers of the
files every layout shares (``corpus.jsonl``, ``queries.jsonl``, ``qrels/*.tsv``).

Each layout (:mod:`omniretrieve.eval.layouts`) turns a folder into an :class:`EvalDataset`.
Malformed files raise :class:`DatasetError` naming the file, the line and the field.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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


Kind = Literal[
    "text", "page-image", "multilingual", "image-caption", "composed", "winoground", "mmeb"
]


@dataclass(frozen=True)
class EvalTask:
    name: str
    queries: dict[str, str]
    """Query id -> its text ("" for an image alone)."""
    qrels: dict[str, dict[str, int]]
    filter: dict[str, Any] | None = None
    """Metadata filter that restricts the corpus this task searches."""
    query_modality: Literal["text", "image", "composed"] = "text"
    query_images: dict[str, str] = field(default_factory=dict)
    """Query id -> the path of its image, for image and composed queries."""
    groups: dict[str, str] = field(default_factory=dict)
    """Query id -> the question it belongs to (translations of one question share one), for
    splitting queries in folds; a query without one is its own group."""
    answers: dict[str, list[str]] = field(default_factory=dict)
    """Query id -> its answer strings, for tasks scored by answer match (MKQA) instead of
    judged documents."""
    candidates: dict[str, list[str]] = field(default_factory=dict)
    """Query id -> the only documents it ranks (MMEB: a candidate list per query)."""

    def search_queries(self, ids: list[str]) -> list[str | dict[str, str]]:
        """The queries ``ids`` as a collection search takes them: a text, or an image (with
        its text, when it has one)."""
        return [
            {"image": self.query_images[q], **({"text": t} if (t := self.queries[q]) else {})}
            if q in self.query_images
            else self.queries[q]
            for q in ids
        ]


@dataclass(frozen=True)
class WinogroundExample:
    example_id: str
    captions: tuple[str, str]
    images: tuple[str, str]


@dataclass(frozen=True)
class EvalDataset:
    name: str
    path: Path
    kind: Kind
    corpus: dict[str, Document]
    tasks: list[EvalTask]
    checksum: str
    """sha256 over the dataset's files: the report records exactly what was scored."""
    layout: str
    """The layout that read it (:mod:`omniretrieve.eval.layouts`): how it is run."""
    metrics: tuple[str, ...]
    """The metrics its report leads with (the layout's published ones)."""
    examples: list[WinogroundExample] = field(default_factory=list)
    instruction: str | None = None
    """The instruction its queries carry to every embedder (a CoIR task's), unless the
    evaluation names one."""

    @property
    def doc_modality(self) -> str:
        if self.corpus and all(d.image and not d.text.strip() for d in self.corpus.values()):
            return "image"
        return "text"


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


def file_checksum(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def pick_split(qrels_dir: Path, split: str | None) -> str:
    available = sorted(p.stem for p in qrels_dir.glob("*.tsv"))
    if split is not None:
        if split not in available:
            raise DatasetError(
                f"{qrels_dir}: no split {split!r}; available: {', '.join(available) or 'none'}",
                field="split",
            )
        return split
    for preferred in ("test", "dev", "validation"):
        if preferred in available:
            return preferred
    if len(available) == 1:
        return available[0]
    raise DatasetError(
        f"{qrels_dir}: several splits ({', '.join(available)}); choose one with --split",
        field="split",
    )


def check_qrels(qrels: dict[str, dict[str, int]], corpus: dict[str, Document], where: Path) -> None:
    missing = {d for docs in qrels.values() for d in docs if d not in corpus}
    if missing:
        example = sorted(missing)[0]
        raise DatasetError(
            f"{where}: {len(missing)} judged document ids are not in the corpus (e.g. {example!r})",
            field="qrels",
        )


def judged_queries(queries: dict[str, str], qrels: dict[str, dict[str, int]], where: Path) -> dict:
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise DatasetError(
            f"{where}: {len(missing)} judged query ids have no query text (e.g. {missing[0]!r})",
            field="qrels",
        )
    return {qid: queries[qid] for qid in qrels}


def required_field(record: dict[str, Any], key: str, path: Path, number: int) -> str:
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DatasetError(f"{path}:{number}: missing field {key!r}", field=key)
    return str(value)
