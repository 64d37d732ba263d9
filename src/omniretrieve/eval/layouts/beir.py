"""BEIR (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``): one task, the split.

A corpus of images only (``{"_id", "image"}``, as ``scifact_pages``, ViDoRe or MVRB's screenshot
retrieval) is a page-image set, scored by NDCG@5 like ViDoRe; text sets (BEIR, MLDR, CoIR) lead
with NDCG@10 and Recall@100, as BEIR's tables do, so every run keeps at least 100 documents per
query. A folder's ``instruction.txt`` (CoIR tasks) is the instruction its queries carry to every
embedder, unless the command names its own. Hybrid fusion
weights can be fitted on another split of the same corpus (``--fit-fusion train``).
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
    pick_split,
)
from omniretrieve.eval.layouts import Layout
from omniretrieve.eval.searching import (
    collection_skip_reason,
    evaluate_in_dataset_collections,
)

TEXT_METRICS: tuple[str, ...] = ("ndcg@10", "recall@100")
PAGE_METRICS: tuple[str, ...] = ("ndcg@5", "ndcg@10")


def detect(root: Path) -> bool:
    return (root / "qrels").is_dir() and (root / "corpus.jsonl").is_file()


def load(root: Path, split: str | None) -> EvalDataset:
    split = pick_split(root / "qrels", split)
    qrels_path = root / "qrels" / f"{split}.tsv"
    corpus = load_corpus(root / "corpus.jsonl")
    queries = load_queries(root / "queries.jsonl")
    qrels = load_qrels(qrels_path)
    check_qrels(qrels, corpus, qrels_path)
    groups = load_query_groups(root / "queries.jsonl")
    judged = judged_queries(queries, qrels, qrels_path)
    task = EvalTask(split, judged, qrels, groups={q: groups[q] for q in judged if q in groups})
    instruction_file = root / "instruction.txt"
    instruction = (
        instruction_file.read_text(encoding="utf-8").strip() if instruction_file.is_file() else ""
    )
    images_only = bool(corpus) and all(d.image and not d.full_text for d in corpus.values())
    return EvalDataset(
        root.name,
        root,
        "page-image" if images_only else "text",
        corpus,
        [task],
        file_checksum(
            [root / "corpus.jsonl", root / "queries.jsonl", qrels_path]
            + ([instruction_file] if instruction else [])
        ),
        layout="beir",
        metrics=PAGE_METRICS if images_only else TEXT_METRICS,
        instruction=instruction or None,
    )


LAYOUT = Layout(
    name="beir",
    description="BEIR corpus.jsonl + queries.jsonl + qrels/",
    detect=detect,
    load=load,
    skip_reason=collection_skip_reason,
    evaluate=evaluate_in_dataset_collections,
    fits_fusion=True,
)
