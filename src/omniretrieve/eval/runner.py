"""``evaluate``: datasets x pipelines -> metrics, through the same ``Collection`` search users get.

Each dataset is indexed once into a collection kept in the cache directory (named by the
dataset's checksum and the embedders), so a second run re-uses it; query vectors are cached on
disk by (model fingerprint, content hash). Every pipeline is a ``Collection.search_many`` call
with the pipeline's mode, vector fields and reranker, so an eval number is a number users get.
"""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omniretrieve import __version__
from omniretrieve.errors import InputError
from omniretrieve.eval.caching import CachingEmbedder
from omniretrieve.eval.loaders import ALL_METRICS, EvalDataset, EvalTask, load_eval_dataset
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.eval.pipelines import Pipeline, parse_pipeline
from omniretrieve.runtime.cache import EmbeddingCache, default_cache_dir

SEARCH_DEPTH = 20
"""Documents kept per query: enough for every reported metric (MAP@20, Recall@20). The first
stage still fuses each list's top 100, as search does."""
COLLECTION_FORMAT = "eval-1"
"""Bump when the way eval builds its collections changes, so old ones are not re-used."""
CROSSFIT = "crossfit"
"""``fit_fusion`` value: fusion weights cross-fitted on two folds of the evaluated queries."""


@dataclass(frozen=True)
class TaskResult:
    dataset: str
    task: str
    pipeline: str
    metrics: dict[str, float] = field(default_factory=dict)
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    queries: int = 0
    seconds: float = 0.0
    skipped: str | None = None
    """Why this pipeline could not run on this dataset (then there are no metrics)."""


@dataclass
class EvalReport:
    datasets: list[EvalDataset]
    pipelines: list[Pipeline]
    results: list[TaskResult]
    config: dict[str, Any]

    def result(self, dataset: str, task: str, pipeline: str) -> TaskResult:
        found = self.find(dataset, task, pipeline)
        if found is None:
            raise KeyError((dataset, task, pipeline))
        return found

    def find(self, dataset: str, task: str, pipeline: str) -> TaskResult | None:
        for item in self.results:
            if (item.dataset, item.task, item.pipeline) == (dataset, task, pipeline):
                return item
        return None

    def pipelines_of(self, dataset: str) -> list[str]:
        """The pipelines that were run on ``dataset``, in report order."""
        ran = {r.pipeline for r in self.results if r.dataset == dataset}
        return [p.spec for p in self.pipelines if p.spec in ran]


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
    embedders: Mapping[str, Any] | None = None,
    rerankers: Mapping[str, Any] | None = None,
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
    shared: dict[str, Any] = dict(embedders or {})
    models = {
        "embedders": shared,
        "rerankers": dict(rerankers or {}),
        "passages": passages,
        "vector_store": vector_store,
        "ocr_engine": ocr_engine,
    }
    fitted: dict[str, dict[str, Any]] = {}
    results: list[TaskResult] = []
    for dataset in loaded:
        results.extend(
            _evaluate_dataset(
                dataset,
                parsed,
                _Run(
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
    reader: Any = models.get("ocr_reader")
    if reader is not None:
        report.config["ocr"] = f"{reader.engine.name} {reader.engine.version}"
    report.config["fusion_weights"] = {
        "fitted_on": {d.name: fit_fusion for d in loaded},
        "by_dataset": {name: fits for name, fits in fitted.items() if fits},
    }
    if out_dir is not None:
        from omniretrieve.eval.report import write_report

        write_report(report, out_dir)
    return report


@dataclass
class _Run:
    """What every dataset of one ``evaluate`` call shares."""

    cache: EmbeddingCache
    cache_dir: Path
    models: dict[str, Any]
    collection_name: str | None
    collections_root: Path | None
    max_queries: int | None
    show_progress: bool
    fit_fusion: str | None
    fitted: dict[str, Any]


def _skip_reason(dataset: EvalDataset, pipeline: Pipeline) -> str | None:
    if dataset.kind == "winoground":
        from omniretrieve.eval.winoground_runner import skip_reason

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
    from omniretrieve.models.registry import default_registry

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
    dataset: EvalDataset, pipelines: list[Pipeline], run: _Run
) -> list[TaskResult]:
    runnable = [p for p in pipelines if _skip_reason(dataset, p) is None]
    results = [
        TaskResult(dataset.name, task.name, p.spec, skipped=_skip_reason(dataset, p))
        for p in pipelines
        if p not in runnable
        for task in (dataset.tasks or [EvalTask("examples", {}, {})])
    ]
    if dataset.kind == "winoground":
        from omniretrieve.eval.winoground_runner import TASK, evaluate_winoground

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
    dataset: EvalDataset, runnable: list[Pipeline], run: _Run, images: bool = False
) -> list[TaskResult]:
    """Pipelines that share one collection (all read documents as text, all through OCR, or,
    with ``images``, all embed the images themselves)."""
    from omniretrieve.index.collection import Collection

    results: list[TaskResult] = []
    needed = tuple(dict.fromkeys(e for p in runnable for e in p.embedders))
    shared = run.models["embedders"]
    for model_id in needed:
        shared.setdefault(model_id, CachingEmbedder(model_id, run.cache))
    ocr = runnable[0].ocr
    if run.collection_name is not None:
        opened = Collection.open(
            run.collection_name,
            root=run.collections_root,
            embedders=shared,
            rerankers=run.models["rerankers"],
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
        opened = _dataset_collection(
            dataset, needed, run.cache_dir, run.models, run.show_progress, ocr, images
        )
    with opened:
        weights: dict[str, tuple[float, ...]] = {}
        if run.fit_fusion is not None and run.fit_fusion != CROSSFIT:
            weights = _fit_weights(
                opened, dataset, runnable, run.fit_fusion, run.fitted, run.show_progress
            )
        for task in dataset.tasks:
            with opened.reusing_first_stages():  # the pipelines share BM25 and dense lists
                results.extend(_evaluate_task(opened, dataset, task, runnable, run, weights))
    return results


def _evaluate_task(
    collection: Any,
    dataset: EvalDataset,
    task: EvalTask,
    pipelines: list[Pipeline],
    run: _Run,
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
        folds = _crossfit_weights(
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


def _crossfit_weights(
    collection: Any,
    task: EvalTask,
    pipelines: list[Pipeline],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    fitted: dict[str, Any],
    show_progress: bool,
) -> dict[str, list[tuple[list[str], tuple[float, ...] | None]]]:
    """Per hybrid pipeline: the task's queries in two folds, each with the fusion weights that
    do best on the other fold (pipelines with the same first stage share one fit)."""
    from omniretrieve.eval.tuning import crossfit_fusion_weights

    chosen: dict[str, list[tuple[list[str], tuple[float, ...] | None]]] = {}
    fits: dict[tuple[tuple[str, ...], bool], Any] = {}
    for pipeline in pipelines:
        if pipeline.mode != "hybrid":
            continue
        key = (pipeline.embedders, pipeline.routing)
        if key not in fits:
            fits[key] = crossfit_fusion_weights(
                collection,
                queries,
                qrels,
                task.groups,
                embedders=pipeline.embedders or None,
                route_by_language=pipeline.routing,
                filter=task.filter,
                show_progress=show_progress,
            )
        chosen[pipeline.spec] = [(fold.queries, fold.fit.weights) for fold in fits[key]]
        fitted.setdefault(pipeline.spec, {})[task.name] = {
            "folds": [
                {
                    "queries": len(fold.queries),
                    "fitted_on_queries": fold.fit.queries,
                    "weights": list(fold.fit.weights),
                    "metric": fold.fit.metric,
                    "fitted_score": fold.fit.score,
                    "grid": {str(k): v for k, v in fold.fit.grid.items()},
                }
                for fold in fits[key]
            ]
        }
    return chosen


def _fit_weights(
    collection: Any,
    dataset: EvalDataset,
    pipelines: list[Pipeline],
    split: str,
    fitted: dict[str, Any],
    show_progress: bool,
) -> dict[str, tuple[float, ...]]:
    """Per hybrid pipeline: weights chosen on ``split``'s queries of the same corpus."""
    from omniretrieve.eval.tuning import fit_fusion_weights

    if dataset.kind not in ("text", "page-image"):
        raise InputError(
            f"{dataset.name}: fusion weights can be fitted on BEIR-layout text sets only",
            field="fit_fusion",
        )
    if split in {t.name for t in dataset.tasks}:
        raise InputError(
            f"{dataset.name}: --fit-fusion {split} is the split being evaluated; fit on another "
            "(e.g. train)",
            field="fit_fusion",
        )
    training = load_eval_dataset(dataset.path, split=split).tasks[0]
    weights: dict[str, tuple[float, ...]] = {}
    fits: dict[tuple[str, ...], Any] = {}
    for pipeline in pipelines:
        if pipeline.mode != "hybrid":
            continue
        if pipeline.embedders not in fits:  # the reranker does not change the first stage
            fits[pipeline.embedders] = fit_fusion_weights(
                collection,
                training.queries,
                training.qrels,
                embedders=pipeline.embedders or None,
                route_by_language=pipeline.routing,
                show_progress=show_progress,
            )
        fit = fits[pipeline.embedders]
        weights[pipeline.spec] = fit.weights
        fitted[pipeline.spec] = {
            "weights": list(fit.weights),
            "metric": fit.metric,
            "train_score": fit.score,
            "grid": {str(k): v for k, v in fit.grid.items()},
            "queries": fit.queries,
        }
    return weights


def _run_task(
    collection: Any,
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
        import sys

        print(f"{dataset.name}/{task.name}: {pipeline.spec}", file=sys.stderr)
    started = time.perf_counter()
    found: dict[str, Any] = {}
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


def _dataset_collection(
    dataset: EvalDataset,
    embedders: tuple[str, ...],
    cache_dir: Path,
    models: dict[str, Any],
    show_progress: bool,
    ocr: bool = False,
    images: bool = False,
) -> Any:
    """The dataset's collection in the cache, created or completed as needed (an interrupted
    build resumes: upsert skips documents already stored with the same content). With
    ``images``, documents keep their images and the (image-capable) embedders embed them."""
    from omniretrieve.index.collection import Collection, CollectionSettings

    passages, store = models["passages"], models["vector_store"]
    parts = [COLLECTION_FORMAT, dataset.checksum, passages, *embedders]
    if store != "faiss":
        parts.append(f"store={store}")
    reader = None
    if ocr:
        from omniretrieve.ocr.reader import OcrReader

        reader = models.get("ocr_reader") or OcrReader(models.get("ocr_engine", "tesseract"))
        models["ocr_reader"] = reader
        parts.append(f"ocr={reader.engine.name}-{reader.engine.version}")
    if images:
        parts.append("images=native")
    identity = "\n".join(parts)
    name = f"{dataset.name}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"
    root = cache_dir / "eval-collections"
    settings = CollectionSettings(
        embedders=embedders,
        passages=passages,
        vector_store=store,
        ocr_images=False,  # ocr+ pipelines read pages below; image models embed the pixels
    ).validate()
    loaded = {"embedders": models["embedders"], "rerankers": models["rerankers"]}
    if (root / name / "collection.json").is_file():
        opened = Collection.open(name, root=root, **loaded)
        if opened.settings.language != settings.language:  # BM25 analysis is not stored
            opened.update_settings(language=settings.language)
    else:
        opened = Collection.create(name, root=root, settings=settings, **loaded)
    present = [d for d in dataset.corpus.values() if not d.empty]
    texts = [d.full_text for d in present]
    with_images = images
    if reader is not None and len(opened) < len(present):
        pages = [Path(d.image).read_bytes() if d.image else b"" for d in present]
        read = reader.read_many(
            [i for i in pages if i], show_progress=show_progress, description="OCR"
        )
        found = iter(read)
        texts = [
            f"{text}\n{next(found)}".strip() if page else text
            for text, page in zip(texts, pages, strict=True)
        ]
        with_images = with_images or bool(pages)  # as before; issue 15: OCR text only here
    documents = [
        {"id": d.doc_id, "text": text, "metadata": d.metadata}
        | ({"image": d.image} if with_images and d.image else {})
        for d, text in zip(present, texts, strict=True)
        if text.strip() or (with_images and d.image)
    ]
    if len(opened) < len(documents):
        opened.upsert(documents, show_progress=show_progress)
        opened.flush()
    return opened


def _configuration(
    datasets: list[EvalDataset], pipelines: list[Pipeline], embedders: Mapping[str, Any]
) -> dict[str, Any]:
    import importlib.metadata as metadata

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
            models[model_id] = cache_key(embedder) if cache_key else str(embedder.fingerprint)
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


def evaluate_suite(
    suite: Path, *, datasets_root: Path | None = None, out_dir: Path | None = None, **options: Any
) -> EvalReport:
    """Run a suite file: several (datasets x pipelines) runs merged into one report.

    The file is TOML::

        datasets_root = "../../shared/datasets"    # relative to the file; optional
        [[run]]
        datasets = ["scifact", "cranfield"]
        pipelines = ["bm25", "hybrid+rerank"]
        fit_fusion = "crossfit"                    # optional: as --fit-fusion, for this run

    ``datasets_root`` (argument, else ``$OMNIRETRIEVE_DATASETS``, else the file's) locates
    dataset names that are not paths."""
    import os
    import tomllib

    try:
        spec = tomllib.loads(suite.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"suite file {suite} does not exist", field="suite") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{suite}: not a valid TOML suite ({exc})", field="suite") from exc
    runs = spec.get("run")
    if not isinstance(runs, list) or not runs:
        raise InputError(f"{suite}: needs at least one [[run]] table", field="suite")
    root = datasets_root
    if root is None and os.environ.get("OMNIRETRIEVE_DATASETS"):
        root = Path(os.environ["OMNIRETRIEVE_DATASETS"])
    if root is None:
        root = suite.parent / str(spec.get("datasets_root", "."))
    reports = []
    for number, run in enumerate(runs, start=1):
        names, pipelines = run.get("datasets"), run.get("pipelines")
        if not isinstance(names, list) or not isinstance(pipelines, list) or not names:
            raise InputError(
                f"{suite}: run {number} needs 'datasets' and 'pipelines' lists", field="suite"
            )
        paths = [Path(n) if Path(n).is_dir() else root / str(n) for n in names]
        chosen = dict(options)
        if "fit_fusion" in run:  # a run may fit its own fusion weights (split name or crossfit)
            if options.get("fit_fusion") is not None:
                raise InputError(
                    f"{suite}: run {number} sets fit_fusion; drop --fit-fusion", field="fit_fusion"
                )
            chosen["fit_fusion"] = str(run["fit_fusion"])
        reports.append(evaluate(paths, [str(p) for p in pipelines], **chosen))
    report = merge_reports(reports)
    report.config["suite"] = str(suite)
    if out_dir is not None:
        from omniretrieve.eval.report import write_report

        write_report(report, out_dir)
    return report


def merge_reports(reports: Sequence[EvalReport]) -> EvalReport:
    datasets: dict[str, EvalDataset] = {}
    pipelines: dict[str, Pipeline] = {}
    results: list[TaskResult] = []
    config: dict[str, Any] = dict(reports[0].config)
    models: dict[str, str] = {}
    described: dict[str, Any] = {}
    for report in reports:
        for dataset in report.datasets:
            datasets.setdefault(dataset.name, dataset)
        for pipeline in report.pipelines:
            pipelines.setdefault(pipeline.spec, pipeline)
        results.extend(report.results)
        models.update(report.config.get("models", {}))
        for entry in report.config.get("datasets", []):
            described.setdefault(entry["name"], entry)
    config.update(models=models, datasets=list(described.values()), pipelines=list(pipelines))
    config["fusion_weights"] = {
        "fitted_on": {
            k: v
            for r in reports
            for k, v in r.config.get("fusion_weights", {}).get("fitted_on", {}).items()
        },
        "by_dataset": {
            k: v
            for r in reports
            for k, v in r.config.get("fusion_weights", {}).get("by_dataset", {}).items()
        },
    }
    return EvalReport(list(datasets.values()), list(pipelines.values()), results, config)
