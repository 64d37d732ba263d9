"""Fit omniretrieve-hybrid-reranker's logistic regression on SciFact *train* queries.

    python benchmarks/train_hybrid_reranker.py   # writes models/hybrid_reranker.json

Candidates are BM25's top 100 per train query; labels are the train qrels. The test split is
never read here. Users send candidate sets of any size (two documents as often as a hundred), and
two of the features are z-scores within the set, so each query also contributes random subsets
of 2, 5, 10, 25 and 50 of its candidates (half of them holding one relevant document). Classes
are weighted to balance, so a score reads like a cross-encoder's: about 0.5 for a pair as likely
relevant as not, whatever the set's size. scikit-learn's LogisticRegression does the fitting; the
regularisation strength is picked by NDCG@10 of the reranked top-100 candidates of held-out
train queries (5-fold cross-validation over queries).
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
SUBSET_SIZES = (2, 5, 10, 25, 50)
C_GRID = (0.01, 0.1, 1.0, 10.0)
SEED = 0


def candidate_sets(
    setup: SciFactSetup, qid: str, top: list[int], rng: np.random.Generator
) -> list[list[int]]:
    """The top-100 itself, then one random subset per size in SUBSET_SIZES."""
    relevant = [i for i in top if setup.data.qrels[qid].get(setup.doc_ids[i], 0) > 0]
    others = [i for i in top if i not in relevant]
    sets = [top]
    for size in SUBSET_SIZES:
        if relevant and rng.random() < 0.5:
            chosen = [int(rng.choice(relevant))]
            chosen += [int(i) for i in rng.choice(others, size - 1, replace=False)]
        else:
            chosen = [int(i) for i in rng.choice(top, size, replace=False)]
        sets.append(chosen)
    return sets


def main(out: Path = PARAMS_FILE) -> None:
    setup = SciFactSetup.build("train")
    queries = setup.data.judged_queries()
    qids = list(queries)
    top100 = setup.bm25_candidates(queries, CANDIDATES)
    top100_features = setup.candidate_features(queries, top100)
    rng = np.random.default_rng(SEED)
    xs, ys, groups = [], [], []
    for number, qid in enumerate(qids):
        for members in candidate_sets(setup, qid, top100[qid], rng):
            xs.append(setup.candidate_features({qid: queries[qid]}, {qid: members})[qid])
            ys += [int(setup.data.qrels[qid].get(setup.doc_ids[i], 0) > 0) for i in members]
            groups += [number] * len(members)
    x, y, group = np.concatenate(xs), np.asarray(ys), np.asarray(groups)
    print(f"{len(qids)} train queries, {len(y)} pairs in candidate sets, {int(y.sum())} relevant")

    def fit(c: float, rows: np.ndarray) -> HybridParams:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
        model.fit(x[rows], y[rows])
        return HybridParams(tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0]))

    best_c, best_ndcg = C_GRID[0], -1.0
    for c in C_GRID:
        fold_scores = []
        for train_rows, held_rows in GroupKFold(n_splits=5).split(x, y, group):
            held = {qids[g] for g in set(group[held_rows])}
            run = setup.rerank_run(
                {q: top100[q] for q in held}, top100_features, fit(c, train_rows)
            )
            qrels = {q: setup.data.qrels[q] for q in held}
            fold_scores.append(evaluate_run(qrels, run).mean["ndcg@10"])
        mean = float(np.mean(fold_scores))
        print(f"C={c:<5} cross-validated train NDCG@10 (top-100 reranked) = {mean:.4f}")
        if mean > best_ndcg:
            best_c, best_ndcg = c, mean

    params = fit(best_c, np.arange(len(y)))
    payload = {
        "features": list(FEATURES),
        "weights": [round(w, 6) for w in params.weights],
        "bias": round(params.bias, 6),
        "fitted_on": (
            f"SciFact train split: {len(qids)} queries; BM25 top-{CANDIDATES} candidates plus "
            f"random subsets of {', '.join(map(str, SUBSET_SIZES))} (seed {SEED}), {len(y)} "
            f"pairs; sklearn LogisticRegression(C={best_c}, class_weight='balanced') chosen by "
            f"5-fold cross-validated NDCG@10 ({best_ndcg:.4f})"
        ),
        "refit_with": "python benchmarks/train_hybrid_reranker.py",
    }
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else PARAMS_FILE)
