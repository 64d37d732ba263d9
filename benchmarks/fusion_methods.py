"""Fusion methods and weightings on real queries: each method (z-score, query-adaptive
z-score, RRF) with equal weights, and the fusion a collection fits on pseudo-queries, against
each signal alone, over the eval collections of ``omniretrieve eval``.

    python benchmarks/fusion_methods.py [-d scifact -d cranfield -d cosqa -d xquad_r]
                                        [--dtype auto] [--seed 0] [--out fusion_methods.json]

Each dataset is indexed as ``eval`` indexes it (cached in ~/.cache/omniretrieve); its queries'
first-stage lists are computed once and every (method, weights) is a matrix product over
them, so every row of a dataset sees exactly the same lists. English sets fuse BM25 with
MiniLM; XQuAD-R fuses BM25 with MiniLM, USE and e5, routed by query language (as
``hybrid:auto``), and reports mAP@20 and Recall@10 (mean of the 11 mono tasks, and cross).
Relevance labels are read here to score, never by the fit.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.eval.caching import CachingEmbedder
from omniretrieve.eval.collection_builder import dataset_collection
from omniretrieve.eval.context import EvalModels
from omniretrieve.eval.layouts import load_eval_dataset
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.fusion import top
from omniretrieve.fusion.methods import FUSION_METHODS
from omniretrieve.index.tuning.self_tune import tune
from omniretrieve.runtime.cache import EmbeddingCache, default_cache_dir

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("OMNIRETRIEVE_DATASETS", ROOT.parent / "shared" / "datasets"))
ENGLISH = ("all-MiniLM-L6-v2",)
MULTILINGUAL = ("multilingual-e5-small", "all-MiniLM-L6-v2", "use-multilingual")


def evaluate_dataset(name: str, dtype: str, seed: int) -> dict[str, Any]:
    dataset = load_eval_dataset(DATASETS / name, split="dev" if name == "cosqa" else None)
    multilingual = name == "xquad_r"
    fields = MULTILINGUAL if multilingual else ENGLISH
    cache = EmbeddingCache(default_cache_dir())
    models = EvalModels(dtype=dtype)
    for model_id in fields:
        models.embedders[model_id] = CachingEmbedder(model_id, cache, dtype=dtype)
    collection = dataset_collection(dataset, fields, default_cache_dir(), models, True)
    fit = tune(collection, reranker="", seed=seed, show_progress=True)
    signals = 1 + len(fields)
    rows: dict[str, tuple[str, tuple[float, ...]]] = {
        "bm25": ("zscore", (1.0,) + (0.0,) * len(fields))
    }
    for i, model_id in enumerate(fields if not multilingual else ()):
        # (routed: a field alone would leave queries of languages it lacks with nothing;
        # each embedder alone is `omniretrieve eval -p dense:<model>`)
        weights = [0.0] * signals
        weights[1 + i] = 1.0
        rows[f"dense:{model_id}"] = ("zscore", tuple(weights))
    for method in FUSION_METHODS:
        rows[f"{method} equal"] = (method, (1 / signals,) * signals)
    rows["auto (pseudo-query fit)"] = (fit.method, fit.weights)
    metrics = list(dataset.metrics)
    per_task: dict[str, dict[str, dict[str, float]]] = {}
    for task in dataset.tasks:
        queries = {q: t for q, t in task.queries.items() if task.qrels.get(q)}
        in_play, stages = collection.first_stage_runs(
            task.search_queries(list(queries)), filter=task.filter, route_by_language=multilingual
        )
        qrels = {q: task.qrels[q] for q in queries}
        per_task[task.name] = {}
        for row, (method, weights) in rows.items():
            run = {}
            for query_id, stage in zip(queries, stages, strict=True):
                # as search fuses: the weights of the fields this query used (routing)
                fused = collection.fuse_runs(stage, in_play, weights, method)
                run[query_id] = dict(top(fused, 20))
            per_task[task.name][row] = evaluate_run(qrels, run, metrics).mean
    return {
        "fit": {
            "method": fit.method,
            "weights": list(fit.weights),
            "ndcg": fit.ndcg,
            "seconds": fit.seconds,
            "documents": fit.documents,
        },
        "metrics": metrics,
        "tasks": per_task,
    }


def summary(name: str, result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per row: each metric, averaged over the mono tasks (XQuAD-R) or the one task."""
    tasks = result["tasks"]
    mono = [t for t in tasks if t != "cross"]
    out: dict[str, dict[str, float]] = {}
    for row in next(iter(tasks.values())):
        out[row] = {}
        for metric in result["metrics"]:
            out[row][metric] = float(np.mean([tasks[t][row][metric] for t in mono]))
            if "cross" in tasks:
                out[row][f"cross {metric}"] = tasks["cross"][row][metric]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-d", "--dataset", action="append", default=None)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    results = {}
    for name in args.dataset or ["scifact", "cranfield", "cosqa", "xquad_r"]:
        result = evaluate_dataset(name, args.dtype, args.seed)
        result["summary"] = summary(name, result)
        results[name] = result
        print(f"\n{name}: fit {result['fit']}")
        for row, values in result["summary"].items():
            print(f"  {row:32s} " + "  ".join(f"{k} {v:.4f}" for k, v in values.items()))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
