"""Refitting the offline reranker (``omniretrieve-hybrid-reranker``) on a corpus's own
pseudo-queries.

The offline reranker is a logistic regression over four features of a (query, candidate) pair
within its candidate set (MiniLM cosine and candidate-set BM25, raw and as z-scores), fitted on
SciFact's train queries. On another corpus the best mix differs: here each pseudo-query's
candidates are its 50 nearest documents by MiniLM (its own document, the cut span removed,
always among them: the cut text is not there to be found by BM25), the positive is labelled 1,
and scikit-learn's ``LogisticRegression`` is fitted as the bundled weights were (C = 0.01,
classes balanced). The held-out pseudo-queries judge the new weights against the bundled ones.
The result is a directory holding ``hybrid_reranker.json``, loaded as the offline reranker
with those weights.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.training.examples import Pair, TrainingData
from omniretrieve.training.loop import Report, TrainedModel

CANDIDATES = 50
METRIC = "held-out_ndcg@10"
REGULARISATION = 0.01


def refit_hybrid_reranker(
    data: TrainingData,
    train: list[Pair],
    held: list[Pair],
    report: Report | None = None,
) -> TrainedModel:
    from sklearn.linear_model import LogisticRegression

    from omniretrieve.eval.caching import CachingEmbedder
    from omniretrieve.models.hybrid_reranker import FEATURES, HybridParams
    from omniretrieve.models.registry import DEFAULT_EMBEDDER
    from omniretrieve.runtime.cache import EmbeddingCache

    say = report or (lambda line: None)
    started = time.perf_counter()
    embedder = CachingEmbedder(DEFAULT_EMBEDDER, EmbeddingCache())
    ids = sorted(data.corpus)
    vectors = embedder.encode_texts(
        [data.corpus[i] for i in ids], task="retrieval.passage", show_progress=True
    )
    sets = _CandidateSets(ids, data.corpus, vectors, embedder)
    x_train, y_train = sets.features([p for p in train if p.positive_id is not None])
    model = LogisticRegression(C=REGULARISATION, class_weight="balanced", max_iter=2000)
    model.fit(x_train, y_train)
    fitted = HybridParams(tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0]))
    bundled = HybridParams.read()
    held_sets = sets.features_by_set([p for p in held if p.positive_id is not None])
    base_score = ndcg(held_sets, bundled)
    score = ndcg(held_sets, fitted)
    say(f"held-out ndcg@10: bundled weights {base_score:.4f}, refitted {score:.4f}")
    seconds = time.perf_counter() - started
    return TrainedModel(
        model=_Params(fitted, FEATURES, len(train), data.description),
        metric=METRIC,
        base_score=base_score,
        score=score,
        loss="logistic",
        steps=1,
        seconds=seconds,
        examples=len(y_train),
        precision="fp64",
    )


class _CandidateSets:
    """Each pair's candidate set: its query's nearest documents by MiniLM, its positive (as
    training sees it, without the cut span) always among them."""

    def __init__(self, ids: list[str], corpus: dict[str, str], vectors: Any, embedder: Any):
        self.ids = ids
        self.position = {doc_id: i for i, doc_id in enumerate(ids)}
        self.corpus = corpus
        self.vectors = np.asarray(vectors, dtype=np.float32)
        self.embedder = embedder

    def features_by_set(self, pairs: list[Pair]) -> list[np.ndarray]:
        """Per pair: the (n, 4) features of its candidates, its positive first."""
        from omniretrieve.models.hybrid_reranker import candidate_bm25, combine_features

        if not pairs:
            return []
        queries = self.embedder.encode_texts([p.query for p in pairs], task="retrieval.query")
        positives = self.embedder.encode_texts(
            [p.positive for p in pairs], task="retrieval.passage"
        )
        out = []
        for pair, query, positive in zip(pairs, queries, positives, strict=True):
            cosine = self.vectors @ query
            own = self.position[str(pair.positive_id)]
            cosine[own] = -np.inf
            top = np.argsort(-cosine, kind="stable")[: CANDIDATES - 1]
            texts = [pair.positive, *(self.corpus[self.ids[i]] for i in top)]
            similarities = np.concatenate([[float(positive @ query)], cosine[top]])
            features = combine_features(
                similarities.astype(np.float32), candidate_bm25(pair.query, texts)
            )
            out.append(features)
        return out

    def features(self, pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray]:
        sets = self.features_by_set(pairs)
        x = np.concatenate(sets)
        y = np.concatenate([[1] + [0] * (len(features) - 1) for features in sets])
        return x, y


def ndcg(sets: list[np.ndarray], params: Any) -> float:
    """Mean NDCG@10 of the positive (one relevant document per pseudo-query) when each
    candidate set is ranked by ``params``."""
    gains = []
    for features in sets:
        scores = params.probability(features)
        rank = int((scores > scores[0]).sum())  # ties counted in the positive's favour
        gains.append(1.0 / np.log2(rank + 2) if rank < 10 else 0.0)
    return float(np.mean(gains)) if gains else 0.0


class _Params:
    """What ``finetune`` saves for a refit: the weights file the offline reranker reads."""

    def __init__(self, params: Any, features: tuple[str, ...], pairs: int, source: str) -> None:
        self.params = params
        self.features = features
        self.pairs = pairs
        self.source = source

    def save_checkpoint(self, out: Path) -> None:
        from omniretrieve.models.hybrid_reranker import PARAMS_NAME

        out.mkdir(parents=True, exist_ok=True)
        payload = {
            "features": list(self.features),
            "weights": [round(w, 6) for w in self.params.weights],
            "bias": round(self.params.bias, 6),
            "fitted_on": (
                f"{self.pairs} pseudo-queries of {self.source}; their 50 nearest documents by "
                f"all-MiniLM-L6-v2 as candidates; LogisticRegression(C={REGULARISATION}, "
                "class_weight='balanced')"
            ),
            "refit_with": "omniretrieve finetune -m omniretrieve-hybrid-reranker",
        }
        (out / PARAMS_NAME).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
