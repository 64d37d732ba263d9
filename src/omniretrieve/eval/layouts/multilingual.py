"""Multilingual retrieval (``qrels/mono-<lang>.tsv`` and ``qrels/cross-all.tsv``, as LAReQA's
XQuAD-R): one task per language, searching only that language's documents (``metadata.lang``),
and one cross-lingual task over the whole corpus; scored by mAP@20 and Recall@10. The report
averages the monolingual tasks in one column.
"""

from __future__ import annotations

from pathlib import Path

from omniretrieve.eval.datasets import (
    EvalDataset,
    EvalTask,
    check_qrels,
    file_checksum,
    judged_queries,
    load_corpus,
    load_qrels,
    load_queries,
    load_query_groups,
)
from omniretrieve.eval.layouts import Layout, TaskGroups
from omniretrieve.eval.searching import (
    collection_skip_reason,
    evaluate_in_dataset_collections,
)

METRICS: tuple[str, ...] = ("map@20", "recall@10")


def detect(root: Path) -> bool:
    qrels = root / "qrels"
    return (qrels / "cross-all.tsv").is_file() or any(qrels.glob("mono-*.tsv"))


def load(root: Path, split: str | None = None) -> EvalDataset:
    """Every task of the folder (``split`` does not apply: the tasks are the languages)."""
    corpus = load_corpus(root / "corpus.jsonl")
    queries = load_queries(root / "queries.jsonl")
    groups = load_query_groups(root / "queries.jsonl")
    tasks: list[EvalTask] = []
    files = [root / "corpus.jsonl", root / "queries.jsonl"]
    for path in sorted((root / "qrels").glob("mono-*.tsv")):
        language = path.stem.removeprefix("mono-")
        qrels = load_qrels(path)
        check_qrels(qrels, corpus, path)
        judged = judged_queries(queries, qrels, path)
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
        check_qrels(qrels, corpus, cross)
        judged = judged_queries(queries, qrels, cross)
        tasks.append(
            EvalTask("cross", judged, qrels, groups={q: groups[q] for q in judged if q in groups})
        )
        files.append(cross)
    return EvalDataset(
        root.name,
        root,
        "multilingual",
        corpus,
        tasks,
        file_checksum(files),
        layout="multilingual",
        metrics=METRICS,
    )


def task_groups(dataset: EvalDataset) -> TaskGroups:
    names = [t.name for t in dataset.tasks]
    mono = [n for n in names if n.startswith("mono-")]
    groups = [(" mono (mean)", mono)] if mono else []
    return groups + [(f" {n}", [n]) for n in names if not n.startswith("mono-")]


LAYOUT = Layout(
    name="multilingual",
    description="XQuAD-R qrels/mono-*.tsv",
    detect=detect,
    load=load,
    skip_reason=collection_skip_reason,
    evaluate=evaluate_in_dataset_collections,
    task_groups=task_groups,
)
