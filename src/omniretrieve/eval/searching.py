"""Running pipelines through a collection: the way every layout but Winoground is evaluated.

Each dataset is indexed once into a collection kept in the cache directory (named by the
dataset's checksum and the embedders), so a second run re-uses it; query vectors are cached on
disk by (model fingerprint, content hash). Every pipeline is a ``Collection.search_many`` call
with the pipeline's mode, vector fields and reranker, so an eval number is a number users get.
Pipelines are grouped by the collection they need: documents read as text, through OCR, or,
for image-capable embedders over image documents, the images themselves.
"""

from __future__ import annotations

import sys
import time

from omniretrieve.errors import InputError
from omniretrieve.eval.answers import answer_recall
from omniretrieve.eval.caching import CachingEmbedder
from omniretrieve.eval.collection_builder import dataset_collection
from omniretrieve.eval.context import EvalRun
from omniretrieve.eval.datasets import EvalDataset, EvalTask
from omniretrieve.eval.layouts import layout_of
from omniretrieve.eval.metrics import (
    ALL_METRICS,
    ANSWER_RECALL,
    MetricResult,
    evaluate_run,
    write_trec_run,
)
from omniretrieve.eval.pipelines import SUPPLIED_RUN, Pipeline
from omniretrieve.eval.results import TaskResult
from omniretrieve.eval.tuning import (
    CROSSFIT,
    PSEUDO,
    FusionChoice,
    crossfit_pipeline_weights,
    fit_pipeline_weights,
    pseudo_pipeline_fusion,
)
from omniretrieve.index.collection import Collection
from omniretrieve.index.results import SearchHit
from omniretrieve.index.settings import FIELD_OUTPUTS, field_name
from omniretrieve.models.registry import default_registry

ANSWER_CUTOFFS = (1, 5, 10, 20, 100)
"""Answer recall cutoffs every answer-scored task reports (those within the run's depth)."""
SEARCH_DEPTH = 20
"""Documents kept per query: enough for every reported metric (MAP@20, Recall@20). The first
stage still fuses each list's top 100, as search does."""


def collection_skip_reason(dataset: EvalDataset, pipeline: Pipeline) -> str | None:
    """Why a pipeline cannot search this dataset's documents (None: it can)."""
    if pipeline.mode == SUPPLIED_RUN:  # the reranker reads what it can (warns on the rest)
        return None
    if pipeline.ocr and dataset.doc_modality != "image":
        return "ocr+ reads image documents; this dataset's documents are text"
    if pipeline.ocr:
        return None
    if dataset.doc_modality == "image":
        if pipeline.mode == "dense" and reads_images(pipeline):
            return None
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


def training_task(dataset: EvalDataset, split: str) -> EvalTask:
    """The queries of another split of the same corpus, to fit fusion weights on."""
    layout = layout_of(dataset)
    if not layout.fits_fusion:
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
    return layout.load(dataset.path, split).tasks[0]


def evaluate_in_dataset_collections(
    dataset: EvalDataset, runnable: list[Pipeline], run: EvalRun
) -> list[TaskResult]:
    """:func:`evaluate_in_collections`, embedding the documents' images when the documents
    are images (page-image sets)."""
    return evaluate_in_collections(
        dataset, runnable, run, native_images=dataset.doc_modality == "image"
    )


def evaluate_in_collections(
    dataset: EvalDataset, runnable: list[Pipeline], run: EvalRun, *, native_images: bool
) -> list[TaskResult]:
    """Every runnable pipeline on every task; with ``native_images``, image-capable dense
    pipelines search a collection that embedded the documents' images."""
    pixels = [p for p in runnable if native_images and not p.ocr and reads_images(p)]
    groups = [  # (pipelines, whether their collection embeds the images themselves)
        ([p for p in runnable if not p.ocr and p not in pixels], False),
        ([p for p in runnable if p.ocr], False),
        (pixels, True),
    ]
    results: list[TaskResult] = []
    for group, images in groups:
        if group:
            results.extend(_evaluate_group(dataset, group, run, images))
    return results


def _evaluate_group(
    dataset: EvalDataset, runnable: list[Pipeline], run: EvalRun, images: bool = False
) -> list[TaskResult]:
    """Pipelines that share one collection (all read documents as text, all through OCR, or,
    with ``images``, all embed the images themselves)."""
    results: list[TaskResult] = []
    needed = tuple(dict.fromkeys(e for p in runnable for e in p.embedders))
    shared = run.models.embedders
    for model_id in needed:
        shared.setdefault(model_id, CachingEmbedder(model_id, run.cache, dtype=run.models.dtype))
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
        weights: dict[str, FusionChoice] = {}
        if run.fit_fusion == PSEUDO:
            weights = pseudo_pipeline_fusion(opened, runnable, run.fitted, run.show_progress)
        elif run.fit_fusion is not None and run.fit_fusion != CROSSFIT:
            fitted = fit_pipeline_weights(
                opened,
                training_task(dataset, run.fit_fusion),
                runnable,
                run.fitted,
                run.show_progress,
            )
            weights = {spec: FusionChoice(w) for spec, w in fitted.items()}
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
    weights: dict[str, FusionChoice],
) -> list[TaskResult]:
    """Every pipeline on one task (fusion fitted on another split or on pseudo-queries, or
    cross-fitted here on the task's own queries)."""
    queries = dict(list(task.queries.items())[: run.max_queries])
    qrels = {q: task.qrels[q] for q in queries}
    folds: dict[str, list[tuple[list[str], FusionChoice]]] = {}
    if run.fit_fusion == CROSSFIT:
        crossfit = crossfit_pipeline_weights(
            collection, task, pipelines, queries, qrels, run.fitted, run.show_progress
        )
        folds = {
            spec: [(fold, FusionChoice(w)) for fold, w in per_fold]
            for spec, per_fold in crossfit.items()
        }
    return [
        _run_task(
            collection,
            dataset,
            task,
            pipeline,
            queries,
            qrels,
            folds.get(pipeline.spec)
            or [(list(queries), weights.get(pipeline.spec) or FusionChoice())],
            run,
        )
        for pipeline in pipelines
    ]


def score_run(
    dataset: EvalDataset,
    task: EvalTask,
    qrels: dict[str, dict[str, int]],
    run: dict[str, dict[str, float]],
    depth: int,
) -> MetricResult:
    """The run's metrics: trec_eval's against the judgments, or, for a task with answer
    strings (MKQA), answer recall at the usual cutoffs and the dataset's own."""
    if not task.answers:
        return evaluate_run(qrels, run, dict.fromkeys([*ALL_METRICS, *dataset.metrics]))
    cutoffs = {int(m.partition("@")[2]) for m in dataset.metrics}
    cutoffs |= {k for k in ANSWER_CUTOFFS if k <= depth}
    texts = {d: dataset.corpus[d].full_text for docs in run.values() for d in docs}
    answers = {q: task.answers[q] for q in qrels}
    found = answer_recall(run, answers, texts, sorted(cutoffs))
    per_query = {f"{ANSWER_RECALL}@{k}": found[k] for k in sorted(cutoffs)}
    return MetricResult.of(per_query)


def _run_task(
    collection: Collection,
    dataset: EvalDataset,
    task: EvalTask,
    pipeline: Pipeline,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    folds: list[tuple[list[str], FusionChoice]],
    run_options: EvalRun,
) -> TaskResult:
    """Search the task's queries (fold by fold where folds have their own fusion weights)
    and score the run."""
    if run_options.show_progress:
        print(f"{dataset.name}/{task.name}: {pipeline.spec}", file=sys.stderr)
    started = time.perf_counter()
    found: dict[str, list[SearchHit]] = {}
    for fold_queries, fusion in folds:
        if pipeline.mode == SUPPLIED_RUN:
            supplied = run_options.supplied_run or {}
            hits = collection.rerank_supplied(
                task.search_queries(fold_queries),
                [supplied.get(q, {}) for q in fold_queries],
                top_k=run_options.depth,
                rerank=pipeline.reranker or True,
                filter=task.filter,
                rerank_share=fusion.rerank_share,
                show_progress=run_options.show_progress,
                snippets=False,
                diversity=pipeline.diversity,
            )
            found.update(zip(fold_queries, hits, strict=True))
            continue
        hits = collection.search_many(
            task.search_queries(fold_queries),
            top_k=run_options.depth,
            mode=pipeline.mode,
            rerank=pipeline.reranker or False,
            filter=task.filter,
            embedders=pipeline.embedders or None,
            route_by_language=pipeline.routing,
            fusion_weights=fusion.weights,
            fusion_method=fusion.method,
            rerank_share=fusion.rerank_share if pipeline.reranker else None,
            show_progress=run_options.show_progress,
            instruction=run_options.instructions or None,
            snippets=False,  # ids and scores are what is scored
            diversity=pipeline.diversity,
            outputs=pipeline.outputs,
        )
        found.update(zip(fold_queries, hits, strict=True))
    seconds = time.perf_counter() - started
    run = {qid: {hit.doc_id: hit.score for hit in found[qid]} for qid in queries}
    scored = score_run(dataset, task, qrels, run, run_options.depth)
    if run_options.runs_dir is not None:
        name = pipeline.spec.replace("/", "_")
        write_trec_run(run_options.runs_dir / dataset.name / task.name / f"{name}.trec", run, name)
    return TaskResult(
        dataset.name,
        task.name,
        pipeline.spec,
        scored.mean,
        scored.per_query,
        len(queries),
        seconds,
        memory_per_document=memory_per_document(collection, pipeline),
    )


def memory_per_document(collection: Collection, pipeline: Pipeline) -> float | None:
    """The bytes a document's stored rows take, on average, in the fields the pipeline
    searches (float32 rows: a dense vector per passage, a vector per token, a (token id,
    weight) pair per learned weight); None for BM25 alone and supplied runs."""
    if pipeline.mode in ("sparse", SUPPLIED_RUN) or not pipeline.embedders:
        return None
    state = collection.state()
    documents = len(state.documents)
    if not documents:
        return None
    total = 0
    for model_id in pipeline.embedders:
        for output in pipeline.outputs or FIELD_OUTPUTS:
            per_doc = state.passages.get(field_name(model_id, output), {})
            total += sum(rows.size * rows.itemsize for _, rows in per_doc.values())
    return total / documents
