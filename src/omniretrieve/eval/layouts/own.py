"""Your own set: a ``corpus.jsonl`` (or a ``corpus/`` folder of text files) and a
``queries.jsonl`` whose records name their ``relevant`` document ids (a list, or an object
id -> grade). One task, ``own``, scored like BEIR text sets.
"""

from __future__ import annotations

from pathlib import Path

from omniretrieve.eval.datasets import (
    DatasetError,
    Document,
    EvalDataset,
    EvalTask,
    check_qrels,
    file_checksum,
    load_corpus,
    required_field,
)
from omniretrieve.eval.layouts import Layout
from omniretrieve.eval.layouts.beir import TEXT_METRICS
from omniretrieve.eval.searching import (
    collection_skip_reason,
    evaluate_in_dataset_collections,
)
from omniretrieve.index.documents import iter_folder_documents
from omniretrieve.jsonl import read_jsonl


def detect(root: Path) -> bool:
    return (root / "queries.jsonl").is_file()


def load(root: Path, split: str | None = None) -> EvalDataset:
    """The one task ``own`` (``split`` does not apply)."""
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
        query_id = required_field(record, "_id", path, number)
        queries[query_id] = required_field(record, "text", path, number)
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
    check_qrels(qrels, corpus, path)
    return EvalDataset(
        root.name,
        root,
        "text",
        corpus,
        [EvalTask("own", queries, qrels)],
        file_checksum(files),
        layout="own",
        metrics=TEXT_METRICS,
    )


LAYOUT = Layout(
    name="own",
    description="corpus + queries.jsonl with 'relevant' ids",
    detect=detect,
    load=load,
    skip_reason=collection_skip_reason,
    evaluate=evaluate_in_dataset_collections,
)
