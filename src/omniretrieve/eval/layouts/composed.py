"""Composed image retrieval (CIRCO, FashionIQ): each query is a reference image and a text
saying how the wanted image differs from it; the corpus holds the candidate images.

Files: ``corpus.jsonl`` (``{"_id", "image"}``, images resolved against the folder),
``queries.jsonl`` (``{"_id", "image", "text"}``: the reference image and the modification
text) and ``qrels/<split>.tsv`` (the target images). Scored by mAP@5 and Recall@10 as
trec_eval computes them (CIRCO's own mAP@k divides by min(k, relevant targets) instead).
Only dense pipelines whose models read images run: the query is embedded as one composed
input (BGE-VL's recipe).
"""

from __future__ import annotations

from pathlib import Path

from omniretrieve.eval.datasets import (
    DatasetError,
    EvalDataset,
    EvalTask,
    check_qrels,
    file_checksum,
    load_corpus,
    load_qrels,
    pick_split,
    required_field,
)
from omniretrieve.eval.layouts import Layout
from omniretrieve.eval.pipelines import Pipeline
from omniretrieve.eval.searching import evaluate_in_collections, reads_images
from omniretrieve.jsonl import read_jsonl

METRICS: tuple[str, ...] = ("map@5", "recall@10")


def detect(root: Path) -> bool:
    queries = root / "queries.jsonl"
    if not ((root / "qrels").is_dir() and (root / "corpus.jsonl").is_file() and queries.is_file()):
        return False
    first = next(read_jsonl(queries), None)
    return first is not None and "image" in first[1]


def load(root: Path, split: str | None = None) -> EvalDataset:
    split = pick_split(root / "qrels", split)
    qrels_path = root / "qrels" / f"{split}.tsv"
    corpus = load_corpus(root / "corpus.jsonl")
    path = root / "queries.jsonl"
    texts: dict[str, str] = {}
    images: dict[str, str] = {}
    for number, record in read_jsonl(path):
        query_id = required_field(record, "_id", path, number)
        image = root / required_field(record, "image", path, number)
        if not image.is_file():
            raise DatasetError(f"{path}:{number}: image {image} not found", field="image")
        images[query_id] = str(image)
        texts[query_id] = str(record.get("text") or "")
    qrels = load_qrels(qrels_path)
    check_qrels(qrels, corpus, qrels_path)
    missing = [q for q in qrels if q not in images]
    if missing:
        raise DatasetError(
            f"{qrels_path}: {len(missing)} judged query ids are not in queries.jsonl "
            f"(e.g. {missing[0]!r})",
            field="qrels",
        )
    task = EvalTask(
        split,
        {q: texts[q] for q in qrels},
        qrels,
        query_modality="composed",
        query_images={q: images[q] for q in qrels},
    )
    return EvalDataset(
        root.name,
        root,
        "composed",
        corpus,
        [task],
        file_checksum([root / "corpus.jsonl", path, qrels_path]),
        layout="composed",
        metrics=METRICS,
    )


def skip_reason(dataset: EvalDataset, pipeline: Pipeline) -> str | None:
    if pipeline.mode == "dense" and not pipeline.ocr and reads_images(pipeline):
        return None
    return "composed image retrieval needs dense:<image-capable model> (BGE-VL)"


LAYOUT = Layout(
    name="composed",
    description="composed queries: queries.jsonl with image + text, qrels/",
    detect=detect,
    load=load,
    skip_reason=skip_reason,
    evaluate=lambda dataset, pipelines, run: evaluate_in_collections(
        dataset, pipelines, run, native_images=True
    ),
)
