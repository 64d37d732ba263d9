"""Choosing hybrid fusion weights on training queries (never on the queries reported).

Two ways: on another split of the same corpus (``fit_fusion_weights``, e.g. BEIR's train
queries), or by cross-fitting when a set has no training split (``crossfit_fusion_weights``:
the queries are split in two folds, each fold is searched with the weights that do best on the
other). Each query's first-stage lists are computed once; every candidate weighting is a matrix
product over them, not another search.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.eval.datasets import EvalTask
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.eval.pipelines import Pipeline
from omniretrieve.fusion import top, zscore_matrix
from omniretrieve.index.collection import Collection
from omniretrieve.index.tuning.fit import CollectionTuning
from omniretrieve.index.tuning.self_tune import tune_for_rerankers

BM25_WEIGHTS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""BM25's share of the weight; the embedders split the rest equally."""
FOLDS = 2
CROSSFIT = "crossfit"
"""``fit_fusion`` value: fusion weights cross-fitted on two folds of the evaluated queries."""
PSEUDO = "pseudo"
"""``fit_fusion`` value: fusion (method, weights) and reranker mix fitted on pseudo-queries
drawn from the corpus, as a collection with ``fusion="auto"`` fits itself: no queries, no
qrels."""


@dataclass(frozen=True)
class FusionChoice:
    """How one pipeline fuses (and mixes its reranker) for some queries."""

    weights: tuple[float, ...] | None = None
    method: str | None = None
    rerank_share: float | None = None


@dataclass(frozen=True)
class FusionFit:
    weights: tuple[float, ...]
    """BM25's first, then one per embedder: the best on the training queries."""
    metric: str
    score: float
    grid: dict[float, float]
    """BM25 weight -> the metric on the training queries."""
    queries: int


@dataclass(frozen=True)
class FoldFit:
    """One fold of a cross-fit: its queries, and the fit made on the other folds' queries."""

    queries: list[str]
    fit: FusionFit


def equal_share(fields: int) -> float:
    """BM25's weight when it and ``fields`` embedders weigh the same (the default)."""
    return 1 / (1 + fields)


def weights_for(bm25_weight: float, fields: int) -> tuple[float, ...]:
    """BM25's weight, then the rest split equally among ``fields`` embedders."""
    return (bm25_weight, *[(1 - bm25_weight) / fields] * fields)


def fit_fusion_weights(
    collection: Collection,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    embedders: Sequence[str] | None = None,
    route_by_language: bool = False,
    filter: Mapping[str, Any] | None = None,  # noqa: A002 (the search API's name)
    grid: Sequence[float] = BM25_WEIGHTS,
    metric: str = "ndcg@10",
    show_progress: bool = False,
) -> FusionFit:
    """Grid-search BM25's weight against the embedders' for ``collection``'s hybrid search,
    on ``queries`` (the grid plus the equal weighting; ties go to the weight closest to equal,
    the default)."""
    judged = _judged(queries, qrels)
    runs, fields = _grid_runs(
        collection, judged, embedders, route_by_language, filter, grid, metric, show_progress
    )
    return _best(runs, qrels, list(judged), fields, metric)


def crossfit_fusion_weights(
    collection: Collection,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    groups: Mapping[str, str] | None = None,
    *,
    embedders: Sequence[str] | None = None,
    route_by_language: bool = False,
    filter: Mapping[str, Any] | None = None,  # noqa: A002
    grid: Sequence[float] = BM25_WEIGHTS,
    metric: str = "ndcg@10",
    show_progress: bool = False,
) -> list[FoldFit]:
    """Two folds of ``queries`` (a query's ``groups`` entry keeps translations of one
    question in the same fold), each with the weights that do best on the other fold."""
    judged = _judged(queries, qrels)
    folds = split_folds(list(judged), groups or {})
    if any(not fold for fold in folds):
        raise InputError("too few judged queries to split in two folds", field="fit_fusion")
    runs, fields = _grid_runs(
        collection, judged, embedders, route_by_language, filter, grid, metric, show_progress
    )
    fits = []
    for number, fold in enumerate(folds):
        others = [q for other, f in enumerate(folds) if other != number for q in f]
        fits.append(FoldFit(fold, _best(runs, qrels, others, fields, metric)))
    return fits


def split_folds(query_ids: Sequence[str], groups: Mapping[str, str]) -> list[list[str]]:
    """Query ids in :data:`FOLDS` folds by a hash of their group (their own id without one):
    stable across runs and machines, and no group is split."""
    folds: list[list[str]] = [[] for _ in range(FOLDS)]
    for query_id in query_ids:
        group = groups.get(query_id, query_id)
        digest = hashlib.sha256(group.encode("utf-8")).digest()
        folds[digest[0] % FOLDS].append(query_id)
    return folds


def _judged(queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, str]:
    judged = {q: t for q, t in queries.items() if qrels.get(q)}
    if not judged:
        raise InputError("no judged queries to fit fusion weights on", field="split")
    return judged


def _grid_runs(
    collection: Collection,
    queries: Mapping[str, str],
    embedders: Sequence[str] | None,
    route_by_language: bool,
    filter: Mapping[str, Any] | None,  # noqa: A002
    grid: Sequence[float],
    metric: str,
    show_progress: bool,
) -> tuple[dict[float, dict[str, dict[str, float]]], int]:
    """Per BM25 weight of ``grid``, the run hybrid search gives (to the metric's depth)."""

    fields, stages = collection.first_stage_runs(
        list(queries.values()),
        embedders=embedders,
        route_by_language=route_by_language,
        filter=filter,
        show_progress=show_progress,
    )
    if not fields:
        raise InputError("a BM25-only collection has nothing to fuse", field="embedders")
    depth = int(metric.partition("@")[2] or 10)
    grid = sorted({*grid, equal_share(len(fields))})
    runs: dict[float, dict[str, dict[str, float]]] = {w: {} for w in grid}
    linear = collection.settings.fusion == "zscore"
    for query_id, stage in zip(queries, stages, strict=True):
        if not linear:  # reciprocal-rank fusion: fuse once per weighting
            for w in grid:
                fused = collection.fuse_runs(stage, fields, weights_for(w, len(fields)))
                runs[w][query_id] = dict(top(fused, depth))
            continue
        docs, matrix = zscore_matrix(list(stage.runs.values()))
        if not docs:
            for w in grid:
                runs[w][query_id] = {}
            continue
        # BM25's list comes first; each embedder the query used gets (1 - w) / all fields
        shares = np.array([[w] + [(1 - w) / len(fields)] * (len(stage.runs) - 1) for w in grid])
        fused = shares @ matrix
        keep = min(depth, len(docs))
        best = np.argpartition(-fused, keep - 1, axis=1)[:, :keep]
        for w, row, chosen in zip(grid, fused, best, strict=True):
            runs[w][query_id] = dict(
                zip([docs[i] for i in chosen.tolist()], row[chosen].tolist(), strict=True)
            )
    return runs, len(fields)


def _best(
    runs: Mapping[float, Mapping[str, Mapping[str, float]]],
    qrels: Mapping[str, Mapping[str, int]],
    query_ids: Sequence[str],
    fields: int,
    metric: str,
) -> FusionFit:
    judged = {q: qrels[q] for q in query_ids}
    scores = {
        w: evaluate_run(judged, {q: run[q] for q in query_ids}, [metric]).mean[metric]
        for w, run in runs.items()
    }
    equal = equal_share(fields)
    best = max(scores, key=lambda w: (round(scores[w], 6), -abs(w - equal)))
    return FusionFit(weights_for(best, fields), metric, scores[best], scores, len(query_ids))


def crossfit_pipeline_weights(
    collection: Collection,
    task: EvalTask,
    pipelines: list[Pipeline],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    fitted: dict[str, Any],
    show_progress: bool,
) -> dict[str, list[tuple[list[str], tuple[float, ...] | None]]]:
    """Per hybrid pipeline: the task's queries in two folds, each with the fusion weights that
    do best on the other fold (pipelines with the same first stage share one fit)."""
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


def fit_pipeline_weights(
    collection: Collection,
    training: EvalTask,
    pipelines: list[Pipeline],
    fitted: dict[str, Any],
    show_progress: bool,
) -> dict[str, tuple[float, ...]]:
    """Per hybrid pipeline: weights chosen on ``training``'s queries of the same corpus."""
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


def pseudo_pipeline_fusion(
    collection: Collection,
    pipelines: list[Pipeline],
    fitted: dict[str, Any],
    show_progress: bool,
) -> dict[str, FusionChoice]:
    """Per hybrid pipeline: the fusion its first stage gets from pseudo-queries (the corpus
    alone), and for a pipeline that reranks, the reranker's mix. Pipelines with the same
    embedders share one fit (its pseudo-queries and lists), each reranker judged on it."""
    hybrid = [p for p in pipelines if p.mode == "hybrid"]
    rerankers: dict[tuple[str, ...], list[str]] = {}
    for pipeline in hybrid:
        rerankers.setdefault(pipeline.embedders, []).append(pipeline.reranker or "")
    fits = {
        embedders: tune_for_rerankers(
            collection, ids, embedders=embedders or None, show_progress=show_progress
        )
        for embedders, ids in rerankers.items()
    }
    chosen: dict[str, FusionChoice] = {}
    for pipeline in hybrid:
        fit = fits[pipeline.embedders][pipeline.reranker or ""]
        share = fit.rerank.first_stage_share if fit.rerank is not None else None
        chosen[pipeline.spec] = FusionChoice(fit.weights, fit.method, share)
        fitted[pipeline.spec] = {"pseudo": summary(fit)}
    return chosen


def summary(fit: CollectionTuning) -> dict[str, Any]:
    """What a report shows of a self-tuned fit (the full candidate list stays out)."""
    data = fit.to_json()
    data.pop("candidates")
    return data
