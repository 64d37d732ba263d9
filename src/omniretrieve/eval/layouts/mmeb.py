"""MMEB-style tasks (``tasks/<task>.jsonl``, one line per query: ``qry_text``, ``qry_img_path``,
``tgt_text`` and ``tgt_img_path`` lists, the first candidate the right one, as TIGER-Lab's
MMEB-eval holds them): each query ranks its own candidate list, scored by hit@1 per task and
the mean over tasks (MMEB's overall score).

No collection: ``dense:<model>`` embeds queries and candidates (text, image or both) and ranks
each query's candidates by cosine. Image paths resolve against the folder (and its
``images/``).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.eval.context import EvalRun
from omniretrieve.eval.datasets import DatasetError, Document, EvalDataset, EvalTask, file_checksum
from omniretrieve.eval.layouts import Layout, TaskGroups
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.eval.pipelines import Pipeline
from omniretrieve.eval.results import TaskResult
from omniretrieve.jsonl import read_jsonl
from omniretrieve.models.registry import default_registry

METRICS: tuple[str, ...] = ("hit@1",)
CANDIDATE_FIELDS = ("tgt_text", "tgt_img_path")


def _task_files(root: Path) -> list[Path]:
    return sorted((root / "tasks").glob("*.jsonl")) if (root / "tasks").is_dir() else []


def detect(root: Path) -> bool:
    files = _task_files(root)
    if not files:
        return False
    first = next((record for _, record in read_jsonl(files[0])), {})
    return any(key in first for key in CANDIDATE_FIELDS)


def _image(root: Path, value: Any, where: str, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise DatasetError(f"{where}: {field} must be a path", field=field)
    for candidate in (root / value, root / "images" / value):
        if candidate.is_file():
            return str(candidate)
    raise DatasetError(f"{where}: image {value!r} not found", field=field)


def _candidate_id(text: str, image: str | None) -> str:
    return hashlib.sha256(f"{text}\0{image or ''}".encode()).hexdigest()[:16]


def load(root: Path, split: str | None = None) -> EvalDataset:
    """Every task file (``split`` does not apply)."""
    files = _task_files(root)
    corpus: dict[str, Document] = {}
    tasks = []
    for path in files:
        queries: dict[str, str] = {}
        images: dict[str, str] = {}
        qrels: dict[str, dict[str, int]] = {}
        candidates: dict[str, list[str]] = {}
        for number, record in read_jsonl(path):
            where = f"{path}:{number}"
            texts = record.get("tgt_text") or []
            pictures = record.get("tgt_img_path") or []
            if not isinstance(texts, list) or not isinstance(pictures, list):
                raise DatasetError(f"{where}: tgt_text and tgt_img_path are lists", field="tgt")
            count = max(len(texts), len(pictures))
            if count < 2:
                raise DatasetError(f"{where}: a query needs at least two candidates", field="tgt")
            query_id = str(record.get("id", number))
            text = str(record.get("qry_text") or record.get("qry") or "")
            image = _image(root, record.get("qry_img_path"), where, "qry_img_path")
            if not text.strip() and image is None:
                raise DatasetError(f"{where}: the query has no text and no image", field="qry")
            queries[query_id] = text
            if image is not None:
                images[query_id] = image
            ids = []
            for position in range(count):
                candidate_text = str(texts[position]) if position < len(texts) else ""
                picture = pictures[position] if position < len(pictures) else None
                candidate_image = _image(root, picture, where, "tgt_img_path")
                doc_id = _candidate_id(candidate_text, candidate_image)
                corpus.setdefault(doc_id, Document(doc_id, candidate_text, image=candidate_image))
                ids.append(doc_id)
            if len(set(ids)) != len(ids):
                raise DatasetError(f"{where}: a candidate is listed twice", field="tgt")
            candidates[query_id] = ids
            qrels[query_id] = {ids[0]: 1}
        tasks.append(
            EvalTask(
                path.stem,
                queries,
                qrels,
                query_modality="image" if images else "text",
                query_images=images,
                candidates=candidates,
            )
        )
    return EvalDataset(
        root.name,
        root,
        "mmeb",
        corpus,
        tasks,
        file_checksum(files),
        layout="mmeb",
        metrics=METRICS,
    )


def skip_reason(dataset: EvalDataset, pipeline: Pipeline) -> str | None:
    """None for ``dense:<model>`` (one model, reading images when the tasks have some)."""
    reason = "MMEB tasks rank each query's candidates with one embedder: dense:<model>"
    if pipeline.mode != "dense" or len(pipeline.embedders) != 1 or pipeline.reranker:
        return reason
    if pipeline.ocr or pipeline.routing:
        return reason
    needs_images = any(d.image for d in dataset.corpus.values()) or any(
        t.query_images for t in dataset.tasks
    )
    if not needs_images:
        return None
    try:
        family = default_registry().resolve(pipeline.embedders[0], allow_download=False).family
    except Exception as exc:  # an unknown id is reported, not raised, like other skips
        return f"{reason}; {pipeline.embedders[0]}: {exc}"
    return None if "image" in family.modalities else f"{reason}; it reads text only"


def _inputs(text: str, image: str | None) -> dict[str, str]:
    return {**({"text": text} if text.strip() else {}), **({"image": image} if image else {})}


def evaluate(dataset: EvalDataset, pipelines: list[Pipeline], run: EvalRun) -> list[TaskResult]:
    results = []
    for pipeline in pipelines:
        embedder = run.models.native_embedder(pipeline.embedders[0])
        documents = list(dataset.corpus.values())
        vectors = dict(
            zip(
                [d.doc_id for d in documents],
                np.asarray(
                    embedder.encode(
                        [_inputs(d.text, d.image) for d in documents], task="retrieval.passage"
                    ).embeddings
                ),
                strict=True,
            )
        )
        for task in dataset.tasks:
            started = time.perf_counter()
            ids = list(task.queries)[: run.max_queries]
            queries = task.search_queries(ids)
            encoded = np.asarray(embedder.encode(queries, task="retrieval.query").embeddings)
            ranked = {
                query_id: {d: float(vector @ vectors[d]) for d in task.candidates[query_id]}
                for query_id, vector in zip(ids, encoded, strict=True)
            }
            scored = evaluate_run({q: task.qrels[q] for q in ids}, ranked, dataset.metrics)
            results.append(
                TaskResult(
                    dataset.name,
                    task.name,
                    pipeline.spec,
                    scored.mean,
                    scored.per_query,
                    len(ids),
                    time.perf_counter() - started,
                )
            )
    return results


def task_groups(dataset: EvalDataset) -> TaskGroups:
    """Each task, then the mean over tasks (MMEB's overall score)."""
    names = [t.name for t in dataset.tasks]
    return [(f" {n}", [n]) for n in names] + [(" overall", names)]


LAYOUT = Layout(
    name="mmeb",
    description="MMEB tasks/<task>.jsonl (qry_text, qry_img_path, tgt_text, tgt_img_path)",
    detect=detect,
    load=load,
    skip_reason=skip_reason,
    evaluate=evaluate,
    task_groups=task_groups,
)
