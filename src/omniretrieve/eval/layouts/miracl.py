"""MIRACL (``topics/*.tsv``: ``qid<TAB>query``; ``qrels/*.tsv`` in TREC's four columns,
``qid Q0 docid relevance``; a corpus as ``corpus.jsonl`` or MIRACL's ``corpus/*.jsonl[.gz]``
with ``docid``, ``title``, ``text``): one task, the split named in the file names
(``topics.miracl-v1.0-sw-dev.tsv`` -> ``dev``); scored by NDCG@10 and Recall@100 as MIRACL's
leaderboard. Documents judged non-relevant (relevance 0) stay in the qrels as judged.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omniretrieve.eval.datasets import (
    DatasetError,
    Document,
    EvalDataset,
    EvalTask,
    check_qrels,
    file_checksum,
    judged_queries,
    load_corpus,
)
from omniretrieve.eval.layouts import Layout
from omniretrieve.eval.searching import collection_skip_reason, evaluate_in_dataset_collections

METRICS: tuple[str, ...] = ("ndcg@10", "recall@100")
SPLITS: tuple[str, ...] = ("testB", "testA", "test", "dev", "train")
"""Split names as MIRACL's files spell them, most specific first."""


def _split_of(path: Path) -> str | None:
    stem = path.name.removesuffix(".tsv")
    return next((s for s in SPLITS if stem.endswith(f"-{s}") or stem == s), None)


def _by_split(folder: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(folder.glob("*.tsv")) if folder.is_dir() else []:
        split = _split_of(path)
        if split is not None:
            found[split] = path
    return found


def detect(root: Path) -> bool:
    return bool(_by_split(root / "topics")) and bool(_by_split(root / "qrels"))


def read_trec_qrels(path: Path) -> dict[str, dict[str, int]]:
    """TREC qrels (``qid iteration docid relevance``, whitespace-separated), as trec_eval
    reads them."""
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise DatasetError(
                f"{path}:{number}: a TREC qrels line has 4 fields (qid Q0 docid relevance)",
                field="qrels",
            )
        try:
            relevance = int(parts[3])
        except ValueError as exc:
            raise DatasetError(
                f"{path}:{number}: relevance {parts[3]!r} is not an integer"
            ) from exc
        qrels.setdefault(parts[0], {})[parts[2]] = relevance
    return qrels


def read_topics(path: Path) -> dict[str, str]:
    topics: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        query_id, tab, text = line.partition("\t")
        if not tab or not text.strip():
            raise DatasetError(f"{path}:{number}: a topic line is qid<TAB>query", field="topics")
        topics[query_id.strip()] = text.strip()
    return topics


def _corpus_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield number, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from exc


def _corpus(root: Path) -> tuple[dict[str, Document], list[Path]]:
    if (root / "corpus.jsonl").is_file():
        return load_corpus(root / "corpus.jsonl"), [root / "corpus.jsonl"]
    files = sorted((root / "corpus").glob("*.jsonl*")) if (root / "corpus").is_dir() else []
    if not files:
        raise DatasetError(f"{root}: no corpus.jsonl and no corpus/*.jsonl[.gz]", field="corpus")
    corpus: dict[str, Document] = {}
    for path in files:
        for number, record in _corpus_records(path):
            doc_id = record.get("docid", record.get("_id"))
            if doc_id is None:
                raise DatasetError(f"{path}:{number}: missing field 'docid'", field="docid")
            corpus[str(doc_id)] = Document(
                str(doc_id), str(record.get("text") or ""), str(record.get("title") or "")
            )
    return corpus, files


def load(root: Path, split: str | None) -> EvalDataset:
    topics, qrels_files = _by_split(root / "topics"), _by_split(root / "qrels")
    available = sorted(set(topics) & set(qrels_files))
    if split is None:
        split = next((s for s in ("dev", "test", "testA", "testB") if s in available), None)
        if split is None and len(available) == 1:
            split = available[0]
    if split not in available:
        raise DatasetError(
            f"{root}: no split {split!r} with both topics and qrels; available: "
            f"{', '.join(available) or 'none'}",
            field="split",
        )
    corpus, corpus_files = _corpus(root)
    qrels = read_trec_qrels(qrels_files[split])
    check_qrels(qrels, corpus, qrels_files[split])
    queries = judged_queries(read_topics(topics[split]), qrels, qrels_files[split])
    return EvalDataset(
        root.name,
        root,
        "text",
        corpus,
        [EvalTask(split, queries, qrels)],
        file_checksum([*corpus_files, topics[split], qrels_files[split]]),
        layout="miracl",
        metrics=METRICS,
    )


LAYOUT = Layout(
    name="miracl",
    description="MIRACL topics/*.tsv + TREC qrels/*.tsv + corpus",
    detect=detect,
    load=load,
    skip_reason=collection_skip_reason,
    evaluate=evaluate_in_dataset_collections,
)
