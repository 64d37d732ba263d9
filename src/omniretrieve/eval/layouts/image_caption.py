"""Image-caption retrieval (``images.jsonl``, ``captions.jsonl``, ``qrels_t2i.tsv``, as COCO):
a text->image and an image->text task over one corpus of images and captions, scored by
Recall@5/10 like M-BEIR. Only pipelines that embed images can search it; in the image->text
task each query is an image, searched through the collection like any query.
"""

from __future__ import annotations

from pathlib import Path

from omniretrieve.eval.datasets import (
    DatasetError,
    Document,
    EvalDataset,
    EvalTask,
    file_checksum,
    load_qrels,
    required_field,
)
from omniretrieve.eval.layouts import Layout
from omniretrieve.eval.pipelines import Pipeline
from omniretrieve.eval.searching import (
    collection_skip_reason,
    evaluate_in_collections,
    reads_images,
)
from omniretrieve.jsonl import read_jsonl

METRICS: tuple[str, ...] = ("recall@5", "recall@10")


def detect(root: Path) -> bool:
    return (root / "images.jsonl").is_file() and (root / "captions.jsonl").is_file()


def load(root: Path, split: str | None = None) -> EvalDataset:
    """Both directions (``split`` does not apply)."""
    images: dict[str, str] = {}
    for number, record in read_jsonl(root / "images.jsonl"):
        image_id = required_field(record, "_id", root / "images.jsonl", number)
        images[image_id] = str(root / required_field(record, "path", root / "images.jsonl", number))
    captions: dict[str, str] = {}
    t2i: dict[str, dict[str, int]] = {}
    for number, record in read_jsonl(root / "captions.jsonl"):
        caption_id = required_field(record, "_id", root / "captions.jsonl", number)
        captions[caption_id] = required_field(record, "text", root / "captions.jsonl", number)
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
            {i: "" for i in i2t},
            {i: {f"caption:{c}": g for c, g in d.items()} for i, d in i2t.items()},
            {"modality": "text"},
            query_modality="image",
            query_images={i: images[i] for i in i2t},
        ),
    ]
    files = [root / "images.jsonl", root / "captions.jsonl"]
    if qrels_path.is_file():
        files.append(qrels_path)
    return EvalDataset(
        root.name,
        root,
        "image-caption",
        corpus,
        tasks,
        file_checksum(files),
        layout="image-caption",
        metrics=METRICS,
    )


def skip_reason(dataset: EvalDataset, pipeline: Pipeline) -> str | None:
    reason = collection_skip_reason(dataset, pipeline)
    if reason is not None or pipeline.ocr:
        return reason
    if pipeline.mode == "dense" and reads_images(pipeline):
        return None
    return "image-caption retrieval needs dense:<image-capable model> or ocr+"


LAYOUT = Layout(
    name="image-caption",
    description="images.jsonl + captions.jsonl",
    detect=detect,
    load=load,
    skip_reason=skip_reason,
    evaluate=lambda dataset, pipelines, run: evaluate_in_collections(
        dataset, pipelines, run, native_images=True
    ),
)
