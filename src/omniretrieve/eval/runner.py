"""``evaluate``: datasets x pipelines -> metrics, through the same ``Collection`` search users get.

Each dataset is indexed once into a collection kept in the cache directory (named by the
dataset's checksum and the embedders), so a second run re-uses it; query vectors are cached on
disk by (model fingerprint, content hash). Every pipeline is a ``Collection.search_many`` call
with the pipeline's mode, vector fields and reranker, so an eval number is a number users get.
"""

from __future__ import annotations

import importlib.metadata as metadata
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

from omniretrieve import __version__
from omniretrieve.errors import InputError
from omniretrieve.eval.caching import CachingEmbedder
from omniretrieve.eval.collection_builder import dataset_collection
from omniretrieve.eval.context import EvalModels, EvalRun, OcrSource
from omniretrieve.eval.loaders import ALL_METRICS, EvalDataset, EvalTask, load_eval_dataset
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.eval.pipelines import Pipeline, parse_pipeline
from omniretrieve.eval.report import write_report
from omniretrieve.eval.results import EvalReport, TaskResult, merge_reports
from omniretrieve.eval.tuning import crossfit_pipeline_weights, fit_pipeline_weights
from omniretrieve.eval.winoground_runner import TASK, evaluate_winoground, skip_reason
from omniretrieve.index.collection import Collection
from omniretrieve.index.model_protocols import IndexEmbedder, IndexReranker
from omniretrieve.index.results import SearchHit
from omniretrieve.models.registry import default_registry
from omniretrieve.runtime.cache import EmbeddingCache, default_cache_dir

__all__ = ["EvalReport", "TaskResult", "evaluate", "merge_reports", "reads_images"]

SEARCH_DEPTH = 20
"""Documents kept per query: enough for every reported metric (MAP@20, Recall@20). The first
stage still fuses each list's top 100, as search does."""
CROSSFIT = "crossfit"
"""``fit_fusion`` value: fusion weights cross-fitted on two folds of the evaluated queries."""


def evaluate(
    datasets: Sequence[str | Path | EvalDataset],
    pipelines: Sequence[str | Pipeline],
    *,
    split: str | None = None,
    cache_dir: Path | None = None,
    collection: str | None = None,
    collections_root: Path | None = None,
    max_queries: int | None = None,
    show_progress: bool = True,
    out_dir: Path | None = None,
    embedders: Mapping[str, IndexEmbedder] | None = None,
    rerankers: Mapping[str, IndexReranker] | None = None,
    passages: str = "split",
    fit_fusion: str | None = None,
    vector_store: str = "faiss",
    ocr_engine: str = "tesseract",
) -> EvalReport:
    """Score every pipeline on every dataset (and each of its tasks).

    ``collection`` searches an existing collection (made with ``omniretrieve index``) instead of
    building one; ``max_queries`` keeps the first N judged queries of each task (for quick
    checks); ``out_dir`` writes the report, JSON and plots there; ``passages="first"`` embeds
    each document once, truncated by the model (as sentence-transformers does) instead of
    splitting long ones; ``embedders``/``rerankers`` pass already loaded models by id;
    ``fit_fusion`` names a split (e.g. ``train``) whose queries choose each hybrid pipeline's
    fusion weights before the evaluated split is searched, or is ``"crossfit"``: each task's
    queries are split in two folds (a question and its translations in the same fold) and
    each fold is searched with the weights that do best on the other;
    ``vector_store="milvus"`` runs the dense searches in Milvus Lite."""
    if passages not in ("split", "first"):
        raise InputError("passages must be split or first", field="passages")
    if not datasets:
        raise InputError("name at least one dataset", field="dataset")
    if not pipelines:
        raise InputError("name at least one pipeline", field="pipeline")
    parsed = [p if isinstance(p, Pipeline) else parse_pipeline(p) for p in pipelines]
    if len({p.spec for p in parsed}) != len(parsed):
        raise InputError("a pipeline is named twice", field="pipeline")
    loaded = [
        d if isinstance(d, EvalDataset) else load_eval_dataset(d, split=split) for d in datasets
    ]
    if collection is not None and len(loaded) != 1:
        raise InputError("--collection evaluates exactly one dataset", field="collection")
    cache = EmbeddingCache(cache_dir)
    shared: dict[str, IndexEmbedder] = dict(embedders or {})
    models = EvalModels(
        shared,
        dict(rerankers or {}),
        cast(Literal["split", "first"], passages),  # checked above
        cast(Literal["faiss", "milvus"], vector_store),  # checked by the collection settings
        OcrSource(ocr_engine),
    )
    fitted: dict[str, dict[str, Any]] = {}
    results: list[TaskResult] = []
    for dataset in loaded:
        results.extend(
            _evaluate_dataset(
                dataset,
                parsed,
                EvalRun(
                    cache=cache,
                    cache_dir=cache_dir or default_cache_dir(),
                    models=models,
                    collection_name=collection,
                    collections_root=collections_root,
                    max_queries=max_queries,
                    show_progress=show_progress,
                    fit_fusion=fit_fusion,
                    fitted=fitted.setdefault(dataset.name, {}),
                ),
            )
        )
    report = EvalReport(loaded, parsed, results, _configuration(loaded, parsed, shared))
    report.config["passages"] = passages
    report.config["vector_store"] = vector_store
    reader = models.ocr.reader
    if reader is not None:
        report.config["ocr"] = f"{reader.engine.name} {reader.engine.version}"
    report.config["fusion_weights"] = {
        "fitted_on": {d.name: fit_fusion for d in loaded},
        "by_dataset": {name: fits for name, fits in fitted.items() if fits},
    }
    if out_dir is not None:
        write_report(report, out_dir)
    return report


def _skip_reason(dataset: EvalDataset, pipeline: Pipeline) -> str | None:
    if dataset.kind == "winoground":
        return skip_reason(pipeline)
    if pipeline.ocr and dataset.doc_modality != "image":
        return "ocr+ reads image documents; this dataset's documents are text"
    if pipeline.ocr:
        return None
    if dataset.kind == "image-caption" or dataset.doc_modality == "image":
        if pipeline.mode == "dense" and reads_images(pipeline):
            return None
        if dataset.kind == "image-caption":
            return "image-caption retrieval needs dense:<image-capable model> or ocr+"
        return "the documents are images: use an ocr+ pipeline or dense:<image-capable model>"
    return None


def reads_images(pipeline: Pipeline) -> bool:
    """Whether every embedder the pipeline names embeds images (CLIP, BGE-VL families)."""
    if not pipeline.embedders:
        return False
    try:
        registry = default_registry()
        return all(
            "image" in registry.resolve(m, allow_download=False).family.modalities
            for m in pipeline.embedders
        )
    except Exception:  # an id that cannot be resolved here is reported when it is loaded
        return False


def _evaluate_dataset(
    dataset: EvalDataset, pipelines: list[Pipeline], run: EvalRun
) -> list[TaskResult]:
    runnable = [p for p in pipelines if _skip_reason(dataset, p) is None]
    results = [
        TaskResult(dataset.name, task.name, p.spec, skipped=_skip_reason(dataset, p))
        for p in pipelines
        if p not in runnable
        for task in (dataset.tasks or [EvalTask("examples", {}, {})])
    ]
    if dataset.kind == "winoground":
        for pipeline in runnable:
            metrics, per_example, seconds = evaluate_winoground(dataset, pipeline, run.models)
            results.append(
                TaskResult(
                    dataset.name,
                    TASK,
                    pipeline.spec,
                    metrics,
                    per_example,
                    len(dataset.examples),
                    seconds,
                )
            )
        return results
    native = dataset.doc_modality == "image" or dataset.kind == "image-caption"
    pixels = [p for p in runnable if native and not p.ocr and reads_images(p)]
    groups = [  # (pipelines, whether their collection embeds the images themselves)
        ([p for p in runnable if not p.ocr and p not in pixels], False),
        ([p for p in runnable if p.ocr], False),
        (pixels, True),
    ]
    for group, images in groups:
        if group:
            results.extend(_evaluate_group(dataset, group, run, images))
    order = {p.spec: i for i, p in enumerate(pipelines)}
    tasks = {t.name: i for i, t in enumerate(dataset.tasks)}
    return sorted(results, key=lambda r: (tasks.get(r.task, 0), order[r.pipeline]))


def _evaluate_group(
    dataset: EvalDataset, runnable: list[Pipeline], run: EvalRun, images: bool = False
) -> list[TaskResult]:
    """Pipelines that share one collection (all read documents as text, all through OCR, or,
    with ``images``, all embed the images themselves)."""
    results: list[TaskResult] = []
    needed = tuple(dict.fromkeys(e for p in runnable for e in p.embedders))
    shared = run.models.embedders
    for model_id in needed:
        shared.setdefault(model_id, CachingEmbedder(model_id, run.cache))
    ocr = runnable[0].ocr
    if run.collection_name is not None:
        opened = Collection.open(
            run.collection_name,
            root=run.collections_root,
            embedders=shared,
            rerankers=run.models.rerankers,
            read_only=True,
        )
        missing = [m for m in needed if m not in opened.settings.embedders]
        if missing:
            opened.close()
            raise InputError(
                f"collection {run.collection_name!r} has no vectors from {', '.join(missing)}",
                field="pipeline",
            )
    else:
        opened = dataset_collection(
            dataset, needed, run.cache_dir, run.models, run.show_progress, ocr, images
        )
    with opened:
        weights: dict[str, tuple[float, ...]] = {}
        if run.fit_fusion is not None and run.fit_fusion != CROSSFIT:
            weights = fit_pipeline_weights(
                opened, dataset, runnable, run.fit_fusion, run.fitted, run.show_progress
            )
        for task in dataset.tasks:
            with opened.reusing_first_stages():  # the pipelines share BM25 and dense lists
                results.extend(_evaluate_task(opened, dataset, task, runnable, run, weights))
    return results


def _evaluate_task(
    collection: Collection,
    dataset: EvalDataset,
    task: EvalTask,
    pipelines: list[Pipeline],
    run: EvalRun,
    weights: dict[str, tuple[float, ...]],
) -> list[TaskResult]:
    """Every pipeline on one task (fusion weights fitted on another split, or cross-fitted
    here on the task's own queries)."""
    if task.query_modality == "image":
        reason = "image queries are not searchable in collections yet (text queries only)"
        return [TaskResult(dataset.name, task.name, p.spec, skipped=reason) for p in pipelines]
    queries = dict(list(task.queries.items())[: run.max_queries])
    qrels = {q: task.qrels[q] for q in queries}
    folds: dict[str, list[tuple[list[str], tuple[float, ...] | None]]] = {}
    if run.fit_fusion == CROSSFIT:
        folds = crossfit_pipeline_weights(
            collection, task, pipelines, queries, qrels, run.fitted, run.show_progress
        )
    return [
        _run_task(
            collection,
            dataset,
            task,
            pipeline,
            queries,
            qrels,
            run.show_progress,
            folds.get(pipeline.spec) or [(list(queries), weights.get(pipeline.spec))],
        )
        for pipeline in pipelines
    ]


def _run_task(
    collection: Collection,
    dataset: EvalDataset,
    task: EvalTask,
    pipeline: Pipeline,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    show_progress: bool,
    folds: list[tuple[list[str], tuple[float, ...] | None]],
) -> TaskResult:
    """Search the task's queries (fold by fold where folds have their own fusion weights)
    and score the run."""
    if show_progress:
        print(f"{dataset.name}/{task.name}: {pipeline.spec}", file=sys.stderr)
    started = time.perf_counter()
    found: dict[str, list[SearchHit]] = {}
    for fold_queries, fusion_weights in folds:
        hits = collection.search_many(
            [queries[q] for q in fold_queries],
            top_k=SEARCH_DEPTH,
            mode=pipeline.mode,
            rerank=pipeline.reranker or False,
            filter=task.filter,
            embedders=pipeline.embedders or None,
            route_by_language=pipeline.routing,
            fusion_weights=fusion_weights,
            show_progress=show_progress,
        )
        found.update(zip(fold_queries, hits, strict=True))
    seconds = time.perf_counter() - started
    run = {qid: {hit.doc_id: hit.score for hit in found[qid]} for qid in queries}
    scored = evaluate_run(qrels, run, ALL_METRICS)
    return TaskResult(
        dataset.name,
        task.name,
        pipeline.spec,
        scored.mean,
        scored.per_query,
        len(queries),
        seconds,
    )


def _configuration(
    datasets: list[EvalDataset],
    pipelines: list[Pipeline],
    embedders: Mapping[str, IndexEmbedder],
) -> dict[str, Any]:

    versions = {}
    for package in ("torch", "transformers", "faiss-cpu", "bm25s", "pytrec-eval-terrier"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    models = {}
    for model_id, embedder in embedders.items():
        try:
            cache_key = getattr(type(embedder), "cache_key", None)
            models[model_id] = (
                cache_key(embedder)
                if cache_key
                else str(getattr(embedder, "fingerprint", "unverified"))
            )
        except Exception:  # a model that failed to load is reported as such
            models[model_id] = "not loaded"
    return {
        "omniretrieve": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "packages": versions,
        "models": models,
        "pipelines": [p.spec for p in pipelines],
        "datasets": [
            {
                "name": d.name,
                "path": str(d.path),
                "kind": d.kind,
                "checksum": d.checksum,
                "documents": len(d.corpus),
                "tasks": {t.name: len(t.queries) for t in d.tasks},
            }
            for d in datasets
        ],
        "search_depth": SEARCH_DEPTH,
    }
