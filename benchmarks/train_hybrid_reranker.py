"""Fit omniretrieve-hybrid-reranker's logistic regression on SciFact *train* queries.

    python benchmarks/train_hybrid_reranker.py   # writes models/hybrid_reranker.json

Candidates are BM25's top 100 per train query; labels are the train qrels. The test split is
never read here. scikit-learn's LogisticRegression does the fitting; the regularisation strength
is picked by NDCG@10 of the reranked train candidates (5-fold cross-validation over queries).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from _scifact import SciFactSetup
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.models.hybrid_reranker import FEATURES, PARAMS_FILE, HybridParams

CANDIDATES = 100
C_GRID = (0.01, 0.1, 1.0, 10.0)


def main(out: Path = PARAMS_FILE) -> None:
    setup = SciFactSetup.build("train")
    queries = setup.data.judged_queries()
    candidates = setup.bm25_candidates(queries, CANDIDATES)
    features = setup.candidate_features(queries, candidates)
    qids = list(queries)
    x = np.concatenate([features[q] for q in qids])
    y = np.concatenate(
        [
            [int(setup.data.qrels[q].get(setup.doc_ids[i], 0) > 0) for i in candidates[q]]
            for q in qids
        ]
    )
    groups = np.concatenate([[n] * len(candidates[q]) for n, q in enumerate(qids)])
    print(f"{len(qids)} train queries, {len(y)} pairs, {int(y.sum())} relevant")

    best_c, best_ndcg = C_GRID[0], -1.0
    for c in C_GRID:
        fold_scores = []
        for train_idx, held_idx in GroupKFold(n_splits=5).split(x, y, groups):
            model = LogisticRegression(C=c, max_iter=1000).fit(x[train_idx], y[train_idx])
            params = HybridParams(tuple(model.coef_[0]), float(model.intercept_[0]))
            held_q = {qids[g] for g in set(groups[held_idx])}
            run = setup.rerank_run({q: candidates[q] for q in held_q}, features, params)
            qrels = {q: setup.data.qrels[q] for q in held_q}
            fold_scores.append(evaluate_run(qrels, run).mean["ndcg@10"])
        mean = float(np.mean(fold_scores))
        print(f"C={c:<5} cross-validated train NDCG@10 = {mean:.4f}")
        if mean > best_ndcg:
            best_c, best_ndcg = c, mean

    model = LogisticRegression(C=best_c, max_iter=1000).fit(x, y)
    payload = {
        "features": list(FEATURES),
        "weights": [round(float(w), 6) for w in model.coef_[0]],
        "bias": round(float(model.intercept_[0]), 6),
        "fitted_on": (
            f"SciFact train split: {len(qids)} queries, BM25 top-{CANDIDATES} candidates, "
            f"{len(y)} pairs; sklearn LogisticRegression(C={best_c}) chosen by 5-fold "
            f"cross-validated NDCG@10 ({best_ndcg:.4f})"
        ),
        "refit_with": "python benchmarks/train_hybrid_reranker.py",
    }
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else PARAMS_FILE)
