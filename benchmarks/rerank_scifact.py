"""The offline reranker against BM25 alone and dense alone, SciFact test, one run.

    python benchmarks/rerank_scifact.py

BM25 (bm25s, English stemming + stopwords) retrieves the top 100; omniretrieve-hybrid-reranker
re-ranks them. Dense alone is all-MiniLM-L6-v2 exact search over the whole corpus. The reranker's
weights were fitted on the *train* split (benchmarks/train_hybrid_reranker.py); this script reads
only the test split. A spot check confirms that the public Reranker API gives the same ranking
as the cached-vector path used for the full run.
"""

from __future__ import annotations

import time

import numpy as np
from _scifact import SciFactSetup

from omniretrieve import Reranker
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.models.hybrid_reranker import HybridParams

CANDIDATES = 100
SPOT_CHECK_QUERIES = 10
METRICS = ("ndcg@10", "recall@100", "mrr")


def main() -> None:
    setup = SciFactSetup.build("test")
    queries = setup.data.judged_queries()
    qrels = setup.data.qrels
    candidates = setup.bm25_candidates(queries, CANDIDATES)
    started = time.perf_counter()
    features = setup.candidate_features(queries, candidates)
    reranked = setup.rerank_run(candidates, features, HybridParams.read())
    rerank_seconds = time.perf_counter() - started
    runs = {
        "bm25": setup.bm25_run(queries, CANDIDATES),
        "dense (all-MiniLM-L6-v2)": setup.dense_run(queries, CANDIDATES),
        "bm25 top-100 + omniretrieve-hybrid-reranker": reranked,
    }
    results = {name: evaluate_run(qrels, run, METRICS) for name, run in runs.items()}
    print(f"\nSciFact test: {len(queries)} queries, {len(setup.doc_ids)} documents\n")
    print(f"| pipeline | {' | '.join(METRICS)} |")
    print(f"|---|{'---|' * len(METRICS)}")
    for name, result in results.items():
        print(f"| {name} | {' | '.join(f'{result.mean[m]:.4f}' for m in METRICS)} |")
    best_single = max(
        results["bm25"].mean["ndcg@10"], results["dense (all-MiniLM-L6-v2)"].mean["ndcg@10"]
    )
    ours = results["bm25 top-100 + omniretrieve-hybrid-reranker"].mean["ndcg@10"]
    print(
        f"\nreranker NDCG@10 - BM25 = {ours - results['bm25'].mean['ndcg@10']:+.4f}; "
        f"- dense = {ours - results['dense (all-MiniLM-L6-v2)'].mean['ndcg@10']:+.4f}; "
        f"beats both: {ours > best_single}"
    )
    print(f"rerank scoring from cached vectors: {rerank_seconds:.1f}s for {len(queries)} queries")

    reranker = Reranker(embedding_model=setup.embedder.model)
    agree = 0
    started = time.perf_counter()
    for qid in list(queries)[:SPOT_CHECK_QUERIES]:
        docs = [setup.doc_texts[i] for i in candidates[qid]]
        api_order = [r.index for r in reranker.rerank(queries[qid], docs, top_n=10).results]
        cached_order = list(
            np.argsort(-HybridParams.read().probability(features[qid]), kind="stable")[:10]
        )
        agree += api_order == [int(i) for i in cached_order]
    per_query = (time.perf_counter() - started) / SPOT_CHECK_QUERIES
    print(
        f"Reranker API vs cached path: identical top-10 for {agree}/{SPOT_CHECK_QUERIES} queries; "
        f"{per_query:.2f}s per query of {CANDIDATES} documents through the API on this machine"
    )


if __name__ == "__main__":
    main()
