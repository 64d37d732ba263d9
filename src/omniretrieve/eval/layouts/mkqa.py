"""MKQA (``corpus.jsonl`` and ``queries/<lang>.jsonl``, one line per question: ``_id`` or
``id``, ``text`` or ``question``, and its ``answers``): one task per language file, each
searching the whole corpus, scored as FlagEmbedding's MKQA evaluator scores it: the share of
questions with an answer string in one of the top k passages (answer Recall@20 and @100;
:mod:`omniretrieve.eval.answers`). Questions without answers are not scored.
"""

from __future__ import annotations

from pathlib import Path

from omniretrieve.eval.datasets import (
    DatasetError,
    EvalDataset,
    EvalTask,
    file_checksum,
    load_corpus,
)
from omniretrieve.eval.layouts import Layout
from omniretrieve.eval.searching import collection_skip_reason, evaluate_in_dataset_collections
from omniretrieve.jsonl import read_jsonl

METRICS: tuple[str, ...] = ("answer_recall@20", "answer_recall@100")


def _query_files(root: Path) -> list[Path]:
    folder = root / "queries"
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []


def detect(root: Path) -> bool:
    files = _query_files(root)
    if not files or not (root / "corpus.jsonl").is_file():
        return False
    first = next((record for _, record in read_jsonl(files[0])), {})
    return "answers" in first


def _task(path: Path) -> EvalTask:
    queries: dict[str, str] = {}
    answers: dict[str, list[str]] = {}
    for number, record in read_jsonl(path):
        query_id = record.get("_id", record.get("id"))
        text = record.get("text", record.get("question"))
        strings = record.get("answers")
        if query_id is None or not isinstance(text, str) or not text.strip():
            raise DatasetError(f"{path}:{number}: a question needs an id and a text", field="text")
        if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
            raise DatasetError(f"{path}:{number}: answers is a list of strings", field="answers")
        kept = [s for s in strings if s.strip()]
        if kept:  # an unanswerable question cannot be scored by answer match
            queries[str(query_id)] = text
            answers[str(query_id)] = kept
    return EvalTask(path.stem, queries, {q: {} for q in queries}, answers=answers)


def load(root: Path, split: str | None = None) -> EvalDataset:
    """Every language file (``split`` does not apply)."""
    files = _query_files(root)
    return EvalDataset(
        root.name,
        root,
        "multilingual",
        load_corpus(root / "corpus.jsonl"),
        [_task(path) for path in files],
        file_checksum([root / "corpus.jsonl", *files]),
        layout="mkqa",
        metrics=METRICS,
    )


LAYOUT = Layout(
    name="mkqa",
    description="MKQA corpus.jsonl + queries/<lang>.jsonl with answers",
    detect=detect,
    load=load,
    skip_reason=collection_skip_reason,
    evaluate=evaluate_in_dataset_collections,
)
