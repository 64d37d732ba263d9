"""``evaluate``: datasets x pipelines -> metrics, and the run's configuration for the report.

Each dataset's layout (:mod:`omniretrieve.eval.layouts`) says which pipelines it can run and
runs them; the retrieval layouts search through the same ``Collection`` users get
(:mod:`omniretrieve.eval.searching`), so an eval number is a number users get.
"""

from __future__ import annotations

import importlib.metadata as metadata
import platform
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, cast

from omniretrieve import __version__
from omniretrieve.errors import InputError, OmniRetrieveError
from omniretrieve.eval.context import EvalModels, EvalRun, OcrSource
from omniretrieve.eval.datasets import EvalDataset, EvalTask
from omniretrieve.eval.layouts import layout_of, load_eval_dataset
from omniretrieve.eval.metrics import (
    check_metrics,
    is_answer_metric,
    metric_depth,
    read_trec_run,
)
from omniretrieve.eval.pipelines import SUPPLIED_RUN, Pipeline, parse_pipeline
from omniretrieve.eval.report import write_report
from omniretrieve.eval.results import EvalReport, TaskResult, add_significance, merge_reports
from omniretrieve.eval.searching import SEARCH_DEPTH, reads_images
from omniretrieve.eval.significance import CORRECTIONS, parse_pairs
from omniretrieve.index.model_protocols import IndexEmbedder, IndexReranker
from omniretrieve.models.base import check_dtype
from omniretrieve.models.registry import default_registry
from omniretrieve.runtime.cache import EmbeddingCache, default_cache_dir

__all__ = ["EvalReport", "TaskResult", "evaluate", "merge_reports", "reads_images"]


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
    sparse: str = "local",
    storage: str = "folder",
    ocr_engine: str = "tesseract",
    named_task: str | None = None,
    instruction: str | None = None,
    dtype: str = "auto",
    metrics: Sequence[str] | None = None,
    depth: int | None = None,
    compare: Sequence[str | tuple[str, str]] = (),
    correction: str = "holm",
    rerank_run: Path | None = None,
    modality_gap: str | None = None,
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
    each fold is searched with the weights that do best on the other; or is ``"pseudo"``:
    each hybrid pipeline fuses (method, weights, reranker mix) as fitted on pseudo-queries
    drawn from the corpus alone, as a collection with ``fusion="auto"`` tunes itself;
    ``vector_store="milvus"`` runs the dense searches in Milvus Lite, and with
    ``sparse="milvus"`` BM25 too (Milvus's full-text search), ``storage="milvus"`` the
    documents too (Milvus alone holds them); ``named_task`` (a task
    an embedder's model card names, e.g. BGE-Code's ``CosQA``) goes to the embedders that know
    it, ``instruction`` (any text) to every embedder, with the queries; ``dtype`` is the
    precision of the embedders it loads (``auto``: each family's fastest quality-safe one);
    ``metrics`` (``ndcg@10``, ``recall@100``, ``p@5``...) replace each dataset's leading
    metrics; ``depth`` is how many documents each query's run keeps (at least every metric's
    cutoff; default 20, BEIR's Recall@100 makes it 100). A dataset's own instruction (a CoIR
    folder's ``instruction.txt``) goes to every embedder when neither ``named_task`` nor
    ``instruction`` is given. With ``out_dir``, each pipeline's run is written in TREC format under
    ``runs/<dataset>/<task>/<pipeline>.trec``. ``compare`` (``"A:B"`` pairs; default: the
    first pipeline against each other) are tested on every task and leading metric (paired
    randomisation test), their p-values corrected by ``correction`` (``holm``,
    ``bonferroni`` or ``none``) within each task and metric; the report marks the winners.
    ``rerank_run`` (a TREC run file over one dataset) is what ``rerank[:model]`` pipelines
    rerank: each query's best 100 documents in it, reranked as ``+rerank`` reranks ours.
    ``modality_gap`` (a reranker or embedder id) scores the datasets' relevant pairs whose
    document is text and those whose document is an image with that model: the histogram
    (``modality-gap.png``) and the overlap of the two go in the report."""
    if passages not in ("split", "first"):
        raise InputError("passages must be split or first", field="passages")
    check_dtype(dtype)
    if not datasets:
        raise InputError("name at least one dataset", field="dataset")
    if not pipelines:
        raise InputError("name at least one pipeline", field="pipeline")
    try:
        wanted = check_metrics(metrics or ())
    except ValueError as exc:
        raise InputError(str(exc), field="metrics") from exc
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise InputError("depth must be a positive integer", field="depth")
    parsed = [p if isinstance(p, Pipeline) else parse_pipeline(p) for p in pipelines]
    if len({p.spec for p in parsed}) != len(parsed):
        raise InputError("a pipeline is named twice", field="pipeline")
    pairs = parse_pairs(compare, [p.spec for p in parsed])
    if correction not in CORRECTIONS:
        raise InputError(f"correction must be one of {', '.join(CORRECTIONS)}", field="correction")
    loaded = [
        d if isinstance(d, EvalDataset) else load_eval_dataset(d, split=split) for d in datasets
    ]
    if wanted:  # the report leads with the metrics asked for
        for dataset in loaded:
            _check_metrics_fit(dataset, wanted)
        loaded = [replace(d, metrics=wanted) for d in loaded]
    supplied = _supplied_run(rerank_run, parsed, loaded)
    if collection is not None and len(loaded) != 1:
        raise InputError("--collection evaluates exactly one dataset", field="collection")
    if named_task is not None and instruction is not None:
        raise InputError("give a named task or an instruction, not both", field="instruction")
    embedder_ids = list(dict.fromkeys(e for p in parsed for e in p.embedders))
    instructions, instruction_notes = query_instructions(embedder_ids, named_task, instruction)
    cache = EmbeddingCache(cache_dir)
    shared: dict[str, IndexEmbedder] = dict(embedders or {})
    models = EvalModels(
        shared,
        dict(rerankers or {}),
        cast(Literal["split", "first"], passages),  # checked above
        cast(Literal["faiss", "milvus"], vector_store),  # checked by the collection settings
        cast(Literal["local", "milvus"], sparse),
        cast(Literal["folder", "milvus"], storage),
        OcrSource(ocr_engine),
        dtype,
    )
    fitted: dict[str, dict[str, Any]] = {}
    results: list[TaskResult] = []
    depths: dict[str, int] = {}
    notes: dict[str, Any] = dict(instruction_notes)
    for dataset in loaded:
        # each run holds every metric's cutoff (BEIR's Recall@100: 100 per query)
        depths[dataset.name] = max(depth or SEARCH_DEPTH, metric_depth(dataset.metrics))
        chosen = instructions
        if not chosen and dataset.instruction:  # the dataset's own (a CoIR task's)
            chosen = dict.fromkeys(embedder_ids, dataset.instruction)
            notes[f"{dataset.name}/instruction.txt"] = dataset.instruction
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
                    depth=depths[dataset.name],
                    runs_dir=out_dir / "runs" if out_dir is not None else None,
                    instructions=chosen,
                    supplied_run=supplied,
                ),
            )
        )
    report = EvalReport(loaded, parsed, results, _configuration(loaded, parsed, shared))
    if notes:
        report.config["query_instructions"] = notes
    report.config["passages"] = passages
    report.config["vector_store"] = vector_store
    report.config["sparse"] = sparse
    report.config["storage"] = storage
    report.config["dtype"] = dtype
    report.config["search_depth"] = max(depths.values())
    report.config["search_depth_by_dataset"] = depths
    reader = models.ocr.reader
    if reader is not None:
        report.config["ocr"] = f"{reader.engine.name} {reader.engine.version}"
    report.config["fusion_weights"] = {
        "fitted_on": {d.name: fit_fusion for d in loaded},
        "by_dataset": {name: fits for name, fits in fitted.items() if fits},
    }
    if modality_gap is not None:
        from omniretrieve.eval.modality_gap import measure_gap

        report.modality_gap = measure_gap(modality_gap, loaded, models)
        report.config["modality_gap"] = report.modality_gap.to_json()
    if rerank_run is not None and supplied is not None:
        report.config["rerank_run"] = _describe_run(rerank_run, supplied, loaded[0])
    add_significance(report, pairs, correction=correction)
    if out_dir is not None:
        write_report(report, out_dir)
    return report


def _evaluate_dataset(
    dataset: EvalDataset, pipelines: list[Pipeline], run: EvalRun
) -> list[TaskResult]:
    """The dataset's layout runs the pipelines it can; the others are reported with why not."""
    layout = layout_of(dataset)
    reasons = {p.spec: layout.skip_reason(dataset, p) for p in pipelines}
    runnable = [p for p in pipelines if reasons[p.spec] is None]
    results = [
        TaskResult(dataset.name, task.name, p.spec, skipped=reasons[p.spec])
        for p in pipelines
        if p not in runnable
        for task in (dataset.tasks or [EvalTask("examples", {}, {})])
    ]
    if runnable:
        results.extend(layout.evaluate(dataset, runnable, run))
    order = {p.spec: i for i, p in enumerate(pipelines)}
    tasks = {t.name: i for i, t in enumerate(dataset.tasks)}
    return sorted(results, key=lambda r: (tasks.get(r.task, 0), order[r.pipeline]))


def query_instructions(
    embedder_ids: list[str], named_task: str | None, instruction: str | None
) -> tuple[dict[str, str], dict[str, str]]:
    """Per embedder, the instruction its queries carry, and notes for the report: a named
    task goes to the embedders whose family knows it (the others keep their default)."""
    if instruction is not None:
        return dict.fromkeys(embedder_ids, instruction), dict.fromkeys(embedder_ids, instruction)
    if named_task is None:
        return {}, {}
    chosen: dict[str, str] = {}
    notes: dict[str, str] = {}
    for model_id in embedder_ids:
        try:
            family = default_registry().resolve(model_id, allow_download=False).family
            named = family.loader().named_instructions
        except OmniRetrieveError as exc:
            notes[model_id] = f"task {named_task}: not checked ({exc.message})"
            continue
        found = next((n for n in named if n.casefold() == named_task.casefold()), None)
        if found is None:
            notes[model_id] = f"task {named_task} is not one of this model's: its default"
        else:
            chosen[model_id] = found
            notes[model_id] = f"task {found}: {named[found]}"
    if not chosen:
        raise InputError(
            f"no embedder of these pipelines knows task {named_task!r} "
            f"({', '.join(embedder_ids) or 'none'}); pass an instruction instead",
            field="task",
        )
    return chosen, notes


def _check_metrics_fit(dataset: EvalDataset, metrics: tuple[str, ...]) -> None:
    """Answer-scored sets (MKQA) take answer_recall@k only; judged sets take the others."""
    answered = any(task.answers for task in dataset.tasks)
    wrong = [m for m in metrics if is_answer_metric(m) != answered]
    if wrong:
        kind = "answer strings: answer_recall@k" if answered else "judgments, not answer strings"
        raise InputError(
            f"{dataset.name} is scored by {kind}; {', '.join(wrong)} does not apply",
            field="metrics",
        )


def _supplied_run(
    path: Path | None, pipelines: list[Pipeline], datasets: list[EvalDataset]
) -> dict[str, dict[str, float]] | None:
    """The run ``rerank[:model]`` pipelines rerank, read and checked against the pipelines
    and the dataset."""
    rerankers = [p.spec for p in pipelines if p.mode == SUPPLIED_RUN]
    if path is None:
        if rerankers:
            raise InputError(
                f"{rerankers[0]} reranks a run given with --rerank-run FILE.trec; give one",
                field="rerank_run",
            )
        return None
    if not rerankers:
        raise InputError(
            "--rerank-run needs a rerank[:model] pipeline to rerank it", field="rerank_run"
        )
    if len(datasets) != 1:
        raise InputError("--rerank-run reranks a run of exactly one dataset", field="rerank_run")
    if not Path(path).is_file():
        raise InputError(f"run file {path} does not exist", field="rerank_run")
    try:
        return read_trec_run(Path(path))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"--rerank-run: {exc}", field="rerank_run") from exc


def _describe_run(
    path: Path, run: Mapping[str, Mapping[str, float]], dataset: EvalDataset
) -> dict[str, Any]:
    """What the report says of a supplied run: its size, and what it lacks."""
    judged = {q for task in dataset.tasks for q in task.queries}
    unknown = {d for docs in run.values() for d in docs if d not in dataset.corpus}
    return {
        "path": str(path),
        "queries": len(run),
        "judged_queries_missing": len(judged - set(run)),
        "unknown_documents": len(unknown),
        "deepest": max((len(docs) for docs in run.values()), default=0),
    }


def _indexed(dataset: EvalDataset) -> dict[str, Any]:
    """How many documents are indexed, and the empty ones that are not."""
    empty = sorted(doc_id for doc_id, doc in dataset.corpus.items() if doc.empty)
    return {"indexed": len(dataset.corpus) - len(empty), "empty_documents": empty}


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
                **_indexed(d),
                "tasks": {t.name: len(t.queries) for t in d.tasks},
            }
            for d in datasets
        ],
    }
