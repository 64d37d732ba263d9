"""Evaluation datasets in their published layouts, each read into one or more tasks.

A *task* is a set of queries, their judgments, and the part of the corpus they search. Layouts:

- BEIR (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``): one task. When the corpus
  holds images only (``{"_id", "image"}``, as ``scifact_pages`` or ViDoRe), it is a page-image
  set, scored by NDCG@5 like ViDoRe.
- Multilingual (``qrels/mono-<lang>.tsv`` and ``qrels/cross-all.tsv``, as LAReQA's XQuAD-R): one
  task per language, searching only that language's documents (``metadata.lang``), and one
  cross-lingual task over the whole corpus; scored by mAP@20 and Recall@10.
- Image-caption (``images.jsonl``, ``captions.jsonl``, ``qrels_t2i.tsv``, as COCO): a text->image
  and an image->text task, scored by Recall@5/10 like M-BEIR.
- Winoground (``examples.jsonl`` with ``image_0``, ``image_1``, ``caption_0``, ``caption_1``):
  pairs scored by the text, image and group accuracies (see :mod:`.winoground`).
- Your own: a ``corpus.jsonl`` (or a ``corpus/`` folder of text files) and a ``queries.jsonl``
  whose records name their ``relevant`` document ids (a list, or an object id -> grade).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from omniretrieve.eval.datasets import (
    DatasetError,
    Document,
    load_corpus,
    load_qrels,
    load_queries,
    load_query_groups,
)
from omniretrieve.index.documents import iter_folder_documents
from omniretrieve.jsonl import read_jsonl

Kind = Literal["text", "page-image", "multilingual", "image-caption", "winoground"]

PRIMARY_METRICS: dict[str, tuple[str, ...]] = {
    "text": ("ndcg@10", "mrr@10"),
    "page-image": ("ndcg@5", "ndcg@10"),
    "multilingual": ("map@20", "recall@10"),
    "image-caption": ("recall@5", "recall@10"),
    "winoground": ("text", "image", "group"),
}
ALL_METRICS: tuple[str, ...] = (
    "ndcg@5",
    "ndcg@10",
    "mrr@10",
    "map@20",
    "recall@5",
    "recall@10",
    "recall@20",
)


@dataclass(frozen=True)
class EvalTask:
    name: str
    queries: dict[str, str]
    """Query id -> text (or, for image queries, the image's path)."""
    qrels: dict[str, dict[str, int]]
    filter: dict[str, Any] | None = None
    """Metadata filter that restricts the corpus this task searches."""
    query_modality: Literal["text", "image"] = "text"
    groups: dict[str, str] = field(default_factory=dict)
    """Query id -> the question it belongs to (translations of one question share one), for
    splitting queries in folds; a query without one is its own group."""


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
    examples: list[WinogroundExample] = field(default_factory=list)

    @property
    def metrics(self) -> tuple[str, ...]:
        return PRIMARY_METRICS[self.kind]

    @property
    def doc_modality(self) -> str:
        if self.corpus and all(d.image and not d.text.strip() for d in self.corpus.values()):
            return "image"
        return "text"


def file_checksum(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def load_eval_dataset(path: str | Path, split: str | None = None) -> EvalDataset:
    """Read a dataset folder, recognising its layout from the files present."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist", field="dataset")
    if (root / "examples.jsonl").is_file():
        return _load_winoground(root)
    if (root / "images.jsonl").is_file() and (root / "captions.jsonl").is_file():
        return _load_image_caption(root)
    qrels_dir = root / "qrels"
    if (qrels_dir / "cross-all.tsv").is_file() or any(qrels_dir.glob("mono-*.tsv")):
        return _load_multilingual(root)
    if qrels_dir.is_dir() and (root / "corpus.jsonl").is_file():
        return _load_beir(root, split)
    if (root / "queries.jsonl").is_file():
        return _load_own(root)
    raise DatasetError(
        f"{root}: not a known dataset layout (BEIR corpus.jsonl + queries.jsonl + qrels/, "
        "XQuAD-R qrels/mono-*.tsv, images.jsonl + captions.jsonl, Winoground examples.jsonl, "
        "or corpus + queries.jsonl with 'relevant' ids)",
        field="dataset",
    )


def _pick_split(qrels_dir: Path, split: str | None) -> str:
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


def _check_qrels(
    qrels: dict[str, dict[str, int]], corpus: dict[str, Document], where: Path
) -> None:
    missing = {d for docs in qrels.values() for d in docs if d not in corpus}
    if missing:
        example = sorted(missing)[0]
        raise DatasetError(
            f"{where}: {len(missing)} judged document ids are not in the corpus (e.g. {example!r})",
            field="qrels",
        )


def _judged(queries: dict[str, str], qrels: dict[str, dict[str, int]], where: Path) -> dict:
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise DatasetError(
            f"{where}: {len(missing)} judged query ids have no query text (e.g. {missing[0]!r})",
            field="qrels",
        )
    return {qid: queries[qid] for qid in qrels}


def _load_beir(root: Path, split: str | None) -> EvalDataset:
    split = _pick_split(root / "qrels", split)
    qrels_path = root / "qrels" / f"{split}.tsv"
    corpus = load_corpus(root / "corpus.jsonl")
    queries = load_queries(root / "queries.jsonl")
    qrels = load_qrels(qrels_path)
    _check_qrels(qrels, corpus, qrels_path)
    groups = load_query_groups(root / "queries.jsonl")
    judged = _judged(queries, qrels, qrels_path)
    task = EvalTask(split, judged, qrels, groups={q: groups[q] for q in judged if q in groups})
    images_only = bool(corpus) and all(d.image and not d.full_text for d in corpus.values())
    return EvalDataset(
        root.name,
        root,
        "page-image" if images_only else "text",
        corpus,
        [task],
        file_checksum([root / "corpus.jsonl", root / "queries.jsonl", qrels_path]),
    )


def _load_multilingual(root: Path) -> EvalDataset:
    corpus = load_corpus(root / "corpus.jsonl")
    queries = load_queries(root / "queries.jsonl")
    groups = load_query_groups(root / "queries.jsonl")
    tasks: list[EvalTask] = []
    files = [root / "corpus.jsonl", root / "queries.jsonl"]
    for path in sorted((root / "qrels").glob("mono-*.tsv")):
        language = path.stem.removeprefix("mono-")
        qrels = load_qrels(path)
        _check_qrels(qrels, corpus, path)
        judged = _judged(queries, qrels, path)
        tasks.append(
            EvalTask(
                f"mono-{language}",
                judged,
                qrels,
                {"lang": language},
                groups={q: groups[q] for q in judged if q in groups},
            )
        )
        files.append(path)
    cross = root / "qrels" / "cross-all.tsv"
    if cross.is_file():
        qrels = load_qrels(cross)
        _check_qrels(qrels, corpus, cross)
        judged = _judged(queries, qrels, cross)
        tasks.append(
            EvalTask("cross", judged, qrels, groups={q: groups[q] for q in judged if q in groups})
        )
        files.append(cross)
    return EvalDataset(root.name, root, "multilingual", corpus, tasks, file_checksum(files))


def _load_image_caption(root: Path) -> EvalDataset:
    images: dict[str, str] = {}
    for number, record in read_jsonl(root / "images.jsonl"):
        image_id = _field(record, "_id", root / "images.jsonl", number)
        images[image_id] = str(root / _field(record, "path", root / "images.jsonl", number))
    captions: dict[str, str] = {}
    t2i: dict[str, dict[str, int]] = {}
    for number, record in read_jsonl(root / "captions.jsonl"):
        caption_id = _field(record, "_id", root / "captions.jsonl", number)
        captions[caption_id] = _field(record, "text", root / "captions.jsonl", number)
        caption_image = record.get("image_id")
        if caption_image is not None:
            if str(image_id) not in images:
                raise DatasetError(
                    f"{root / 'captions.jsonl'}:{number}: image_id {image_id!r} is not in "
                    "images.jsonl",
                    field="image_id",
                )
            t2i.setdefault(caption_id, {})[str(image_id)] = 1
    qrels_path = root / "qrels_t2i.tsv"
    if qrels_path.is_file():
        t2i = load_qrels(qrels_path)
    i2t: dict[str, dict[str, int]] = {}
    for caption_id, judged in t2i.items():
        for image_id, grade in judged.items():
            i2t.setdefault(image_id, {})[caption_id] = grade
    corpus: dict[str, Document] = {}
    for image_id, image_path in images.items():
        doc_id = f"image:{image_id}"
        corpus[doc_id] = Document(doc_id, "", metadata={"modality": "image"}, image=image_path)
    for caption_id, text in captions.items():
        doc_id = f"caption:{caption_id}"
        corpus[doc_id] = Document(doc_id, text, metadata={"modality": "text"})
    tasks = [
        EvalTask(
            "t2i",
            {c: captions[c] for c in t2i},
            {c: {f"image:{i}": g for i, g in d.items()} for c, d in t2i.items()},
            {"modality": "image"},
        ),
        EvalTask(
            "i2t",
            {i: images[i] for i in i2t},
            {i: {f"caption:{c}": g for c, g in d.items()} for i, d in i2t.items()},
            {"modality": "text"},
            query_modality="image",
        ),
    ]
    files = [root / "images.jsonl", root / "captions.jsonl"]
    if qrels_path.is_file():
        files.append(qrels_path)
    return EvalDataset(root.name, root, "image-caption", corpus, tasks, file_checksum(files))


def _load_winoground(root: Path) -> EvalDataset:
    path = root / "examples.jsonl"
    examples = []
    for number, record in read_jsonl(path):
        example_id = str(record.get("id", number))
        captions = (
            _field(record, "caption_0", path, number),
            _field(record, "caption_1", path, number),
        )
        images = []
        for key in ("image_0", "image_1"):
            name = _field(record, key, path, number)
            candidates = [root / name, root / "images" / name, root / "images" / f"{name}.png"]
            found = next((c for c in candidates if c.is_file()), None)
            if found is None:
                raise DatasetError(f"{path}:{number}: image {name!r} not found", field=key)
            images.append(str(found))
        examples.append(WinogroundExample(example_id, captions, (images[0], images[1])))
    return EvalDataset(
        root.name, root, "winoground", {}, [], file_checksum([path]), examples=examples
    )


def _load_own(root: Path) -> EvalDataset:
    if (root / "corpus.jsonl").is_file():
        corpus = load_corpus(root / "corpus.jsonl")
        files = [root / "corpus.jsonl", root / "queries.jsonl"]
    elif (root / "corpus").is_dir():
        corpus = {}
        files = [root / "queries.jsonl"]
        for record in iter_folder_documents(root / "corpus"):
            corpus[record["id"]] = Document(
                record["id"], record["text"], metadata=record["metadata"]
            )
            files.append(root / "corpus" / record["id"])
    else:
        raise DatasetError(f"{root}: needs corpus.jsonl or a corpus/ folder", field="dataset")
    path = root / "queries.jsonl"
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for number, record in read_jsonl(path):
        query_id = _field(record, "_id", path, number)
        queries[query_id] = _field(record, "text", path, number)
        relevant = record.get("relevant")
        if isinstance(relevant, list):
            judged = {str(d): 1 for d in relevant}
        elif isinstance(relevant, dict):
            try:
                judged = {str(d): int(g) for d, g in relevant.items()}
            except (TypeError, ValueError) as exc:
                raise DatasetError(
                    f"{path}:{number}: relevant grades must be integers", field="relevant"
                ) from exc
        else:
            raise DatasetError(
                f"{path}:{number}: 'relevant' must list the relevant document ids",
                field="relevant",
            )
        qrels[query_id] = judged
    _check_qrels(qrels, corpus, path)
    return EvalDataset(
        root.name, root, "text", corpus, [EvalTask("own", queries, qrels)], file_checksum(files)
    )


def _field(record: dict[str, Any], key: str, path: Path, number: int) -> str:
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DatasetError(f"{path}:{number}: missing field {key!r}", field=key)
    return str(value)
