"""Hard negatives mined from the training corpus itself, by BM25, the base embedder, or both.

For each pair, the corpus is ranked for its query; the ``skip_top`` best candidates are passed
over (the best-ranked unlabelled documents are often unlabelled positives), then a candidate is
kept only when it is none of the query's labelled positives and scores below the positive by
``relative_margin`` (the false-negative guard of sentence-transformers' ``mine_hard_negatives``:
a candidate the retriever ranks as high as the positive is likely relevant too). BM25 and dense
scores are fused by z-scores over the whole corpus for ``hybrid``, so the positive's own score
is on the same scale as its candidates'.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.runtime.progress import progress_bar
from omniretrieve.training.examples import Pair, TrainingData

Method = Literal["bm25", "dense", "hybrid"]
METHODS: tuple[str, ...] = ("bm25", "dense", "hybrid")


@dataclass(frozen=True)
class MiningSettings:
    method: Method = "hybrid"
    count: int = 1
    """Negatives per pair."""
    skip_top: int = 3
    """Candidates passed over at the top of each ranking."""
    depth: int = 50
    """Candidates looked at per query."""
    relative_margin: float = 0.05
    """A candidate must score below ``positive * (1 - margin)`` (on the score's own scale:
    BM25 and cosine are positive; hybrid z-scores are shifted to be)."""

    def check(self) -> MiningSettings:
        if self.method not in METHODS:
            raise InputError(
                f"mining method {self.method!r} is none of {', '.join(METHODS)}", field="mine"
            )
        if self.count < 1 or self.skip_top < 0 or self.depth <= self.skip_top:
            raise InputError(
                "mining needs count >= 1, skip_top >= 0 and depth > skip_top", field="mine"
            )
        if not 0 <= self.relative_margin < 1:
            raise InputError("relative_margin lies in [0, 1)", field="relative_margin")
        return self

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


EncodeTexts = Callable[[list[str]], np.ndarray]
"""Texts -> normalised vectors (the base embedder: queries and documents alike)."""


def mine_hard_negatives(
    data: TrainingData,
    settings: MiningSettings,
    *,
    encode_queries: EncodeTexts | None = None,
    encode_documents: EncodeTexts | None = None,
    show_progress: bool = False,
) -> TrainingData:
    """``data`` with ``settings.count`` mined negatives added to each pair that has none."""
    settings.check()
    if not data.corpus:
        raise InputError(
            "mining hard negatives needs the documents (a --corpus, a dataset or a collection)",
            field="mine",
        )
    ids = sorted(data.corpus)
    scorer = _Scorer(ids, data.corpus, settings.method, encode_queries, encode_documents)
    scorer.prepare(sorted({p.query for p in data.pairs if not p.negatives}))
    position = {doc_id: i for i, doc_id in enumerate(ids)}
    with progress_bar(
        len(data.pairs), f"mining negatives ({settings.method})", enabled=show_progress
    ) as advance:
        mined: list[Pair] = []
        for pair in data.pairs:
            mined.append(pair if pair.negatives else _mined(pair, data, scorer, position, settings))
            advance(1)
    return data.with_pairs(mined)


def _mined(
    pair: Pair,
    data: TrainingData,
    scorer: _Scorer,
    position: dict[str, int],
    settings: MiningSettings,
) -> Pair:
    scores = scorer.scores(pair.query)
    labelled = set(data.labelled(pair.query))
    if pair.positive_id is not None:
        labelled.add(pair.positive_id)
    ceiling = _ceiling(scores, pair, position, settings.relative_margin)
    chosen = choose_negatives(scorer.ids, scores, labelled, settings, ceiling)
    return replace(
        pair, negatives=tuple(data.corpus[i] for i in chosen), negative_ids=tuple(chosen)
    )


def _ceiling(
    scores: np.ndarray, pair: Pair, position: dict[str, int], margin: float
) -> float | None:
    """The score a negative must stay below (None: the positive is not in the corpus)."""
    if pair.positive_id is None or pair.positive_id not in position:
        return None
    return float(scores[position[pair.positive_id]]) * (1.0 - margin)


def choose_negatives(
    ids: list[str],
    scores: np.ndarray,
    labelled: frozenset[str] | set[str],
    settings: MiningSettings,
    ceiling: float | None,
) -> list[str]:
    """The best candidates after the skipped top ranks, none labelled, all below ``ceiling``."""
    depth = min(settings.depth, len(ids))
    top = np.argpartition(-scores, depth - 1)[:depth] if depth < len(ids) else np.arange(len(ids))
    top = top[np.argsort(-scores[top], kind="stable")]
    chosen: list[str] = []
    for doc_id, score in (
        (ids[i], float(scores[i])) for i in top[settings.skip_top :] if ids[i] not in labelled
    ):
        if ceiling is not None and score >= ceiling:
            continue
        chosen.append(doc_id)
        if len(chosen) == settings.count:
            break
    return chosen


class _Scorer:
    """Scores of every corpus document for a query (all positive, higher is better)."""

    def __init__(
        self,
        ids: list[str],
        corpus: dict[str, str],
        method: Method,
        encode_queries: EncodeTexts | None,
        encode_documents: EncodeTexts | None,
    ) -> None:
        self.method = method
        self.ids = ids
        self.bm25: Any = None
        self.vectors: np.ndarray | None = None
        self.encode_queries = encode_queries
        self.query_vectors: dict[str, np.ndarray] = {}
        texts = [corpus[i] for i in ids]
        if method in ("bm25", "hybrid"):
            from omniretrieve.text.bm25 import BM25Index

            self.bm25 = BM25Index(texts)
        if method in ("dense", "hybrid"):
            if encode_queries is None or encode_documents is None:
                raise InputError(f"{method} mining needs an embedder", field="mine")
            self.vectors = encode_documents(texts)

    def prepare(self, queries: list[str]) -> None:
        """Embeds the queries at once (dense and hybrid)."""
        if self.vectors is not None and queries:
            assert self.encode_queries is not None
            self.query_vectors = dict(zip(queries, self.encode_queries(queries), strict=True))

    def scores(self, query: str) -> np.ndarray:
        parts: list[np.ndarray] = []
        if self.bm25 is not None:
            parts.append(self.bm25.scores(query))
        if self.vectors is not None:
            parts.append(self.vectors @ self.query_vectors[query])
        if len(parts) == 1:
            return parts[0]
        fused = np.sum([_zscores(p) for p in parts], axis=0)
        return np.asarray(fused - fused.min() + 1e-6, dtype=np.float32)


def _zscores(scores: np.ndarray) -> np.ndarray:
    spread = float(scores.std())
    return (scores - scores.mean()) / (spread if spread > 0 else 1.0)
