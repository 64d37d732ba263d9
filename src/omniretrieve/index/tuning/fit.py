"""Choosing a collection's fusion (method, weight per signal, whether to fuse at all) and its
reranker mix from pseudo-queries alone: no relevance labels, no real queries.

Every candidate is judged by NDCG@10 of the pseudo-queries' relevant documents: each
:data:`~omniretrieve.fusion.methods.FUSION_METHODS` method with every weighting on a grid
over the simplex (a signal at weight 0 is not fused at all), equal weights among them. The
simplest candidate within one standard error of the best wins (:func:`choose_fusion`). The
reranker is then judged on the chosen fusion's top candidates, its z-scores mixed with the
first stage's (``first_stage_share`` 0.5 to 1, 1 meaning no rerank), and used only on clear
evidence (:func:`choose_rerank_mix`).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from omniretrieve.fusion import mix_scores, top
from omniretrieve.fusion.methods import FUSION_METHODS
from omniretrieve.index.candidate_rerank import rerank_candidates
from omniretrieve.index.queries import SearchQuery
from omniretrieve.index.settings import FIELD_OUTPUTS, field_name
from omniretrieve.index.store import StoredDocument
from omniretrieve.index.tuning.cancel import ShouldStop, checkpoint, never
from omniretrieve.index.tuning.pseudo_lists import PseudoLists
from omniretrieve.index.tuning.tuning_file import validated_tuning
from omniretrieve.runtime.progress import progress_bar

METHOD_ORDER = ("zscore", "zscore-adaptive", "rrf")
"""Tie-break among methods: the simplest first."""
RERANK_DEPTH = 20
"""Candidates the reranker is judged on per pseudo-query."""
RERANK_QUERIES = 200
MIN_RERANK_GAIN = 0.005
"""NDCG@10 the reranker must add on the pseudo-queries to be used."""
CONFIDENCE = 2.0
"""Standard errors a reranker's pseudo-query gain must clear to be used."""
MIX_GRID = tuple(i / 10 for i in range(5, 11))
"""The first stage's shares of the reranked score a fit chooses among (1: no rerank). The
reranker never outweighs the first stage on pseudo-queries' word: they overstate lexical
evidence (Cranfield's pseudo-queries favoured the offline reranker alone by 2.8 points while
its real queries lost 0.2 with it); ``rerank_share`` per search goes down to 0."""


@dataclass(frozen=True)
class Candidate:
    method: str
    weights: tuple[float, ...]
    ndcg: float
    mrr: float


@dataclass(frozen=True)
class RerankDecision:
    reranker: str
    first_stage_share: float
    """1.0: not reranked (the reranker did not gain); 0.0: the reranker's order alone."""
    ndcg_without: float
    ndcg_reranker_most: float
    """At the smallest share judged (the reranker weighing as much as the first stage)."""
    ndcg: float
    """At the chosen share."""
    grid: dict[float, float]
    queries: int
    candidates: int

    @property
    def used(self) -> bool:
        return self.first_stage_share < 1.0


@dataclass(frozen=True)
class CollectionTuning:
    """A collection's self-tuned search, as stored in ``tuning.json``."""

    method: str
    embedders: tuple[str, ...]
    """The lists fused after BM25's (``dense:<model>``, ``sparse:<model>``,
    ``multivector:<model>``; fits made before those lists name each model, its dense list)."""
    weights: tuple[float, ...]
    """BM25's first, then one per list of ``embedders``."""
    ndcg: float
    equal_ndcg: float
    """Pseudo-query NDCG@10 of the default (z-score fusion, equal weights)."""
    alone: dict[str, float]
    """``bm25`` / ``dense:<model>`` -> pseudo-query NDCG@10 of that signal alone."""
    candidates: list[Candidate]
    rerank: RerankDecision | None
    queries: int
    kinds: dict[str, int]
    """How the pseudo-queries were cut (docstring / lead / span)."""
    documents: int
    """Documents in the collection when it was fitted (a refit is due when this drifts)."""
    universe: int
    seed: int
    seconds: float
    fitted_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def lists(self) -> tuple[str, ...]:
        """The lists of ``embedders`` by name (a model id alone: its dense list)."""
        return tuple(
            n if n.split(":", 1)[0] in FIELD_OUTPUTS else f"dense:{n}" for n in self.embedders
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["candidates"] = [
            {"method": c.method, "weights": list(c.weights), "ndcg": c.ndcg, "mrr": c.mrr}
            for c in self.candidates
        ]
        if self.rerank is not None:
            data["rerank"]["grid"] = {str(k): v for k, v in self.rerank.grid.items()}
        data["embedders"], data["weights"] = list(self.embedders), list(self.weights)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CollectionTuning:
        """A fit read back from ``tuning.json``; a :class:`ValueError` names what is wrong
        with a damaged or hand-edited file (:mod:`~omniretrieve.index.tuning.tuning_file`)."""
        checked = validated_tuning(data).model_dump()  # the dataclass's fields, checked
        rerank = checked["rerank"]
        return cls(
            **{
                **checked,
                "embedders": tuple(checked["embedders"]),
                "weights": tuple(checked["weights"]),
                "candidates": [
                    Candidate(**{**c, "weights": tuple(c["weights"])})
                    for c in checked["candidates"]
                ],
                "rerank": None
                if rerank is None
                else RerankDecision(
                    **{**rerank, "grid": {float(k): v for k, v in rerank["grid"].items()}}
                ),
            }
        )


def weight_grid(signals: int) -> list[tuple[float, ...]]:
    """Weightings of ``signals`` lists on the simplex (steps of 1/10 for up to three lists,
    coarser beyond), equal weights included."""
    steps = 10 if signals <= 3 else 8 if signals == 4 else 4
    grid = {
        tuple(round(c / steps, 6) for c in combo)
        for combo in itertools.product(range(steps + 1), repeat=signals)
        if sum(combo) == steps
    }
    grid.add(tuple([round(1 / signals, 6)] * signals))
    return sorted(grid)


def choose_fusion(
    lists: PseudoLists, methods: Sequence[str] = METHOD_ORDER
) -> tuple[Candidate, list[Candidate], dict[str, float], float]:
    """The chosen (method, weights) on the pseudo-queries, every candidate, each signal
    alone, and the default's (z-score, equal weights) NDCG@10.

    Pseudo-queries are a noisy judge, so the best candidate is not taken blindly: among the
    candidates within one standard error of it (paired over the queries), the simplest
    wins: one signal alone, else the simplest method (z-score first) with the weights
    closest to equal."""
    signals = 1 + len(lists.lists)
    grid = weight_grid(signals)
    weights = np.array(grid, dtype=np.float64)
    count = len(lists.queries)
    gains = {m: np.zeros((count, len(grid))) for m in methods}
    reciprocal = {m: np.zeros((count, len(grid))) for m in methods}
    for row, (query, runs) in enumerate(zip(lists.queries, lists.runs, strict=True)):
        for name in methods:
            docs, matrix = FUSION_METHODS[name].matrix(runs)
            if query.relevant not in docs:
                continue
            rank = ranks_of(weights @ matrix, docs.index(query.relevant))
            gains[name][row] = ndcg_at_10(rank)
            reciprocal[name][row] = 1 / rank
    equal = tuple([round(1 / signals, 6)] * signals)
    candidates = [
        Candidate(
            name, grid[i], float(gains[name][:, i].mean()), float(reciprocal[name][:, i].mean())
        )
        for name in methods
        for i in range(len(grid))
    ]

    def preference(c: Candidate) -> tuple[float, float, float, int]:
        distance = sum(abs(a - b) for a, b in zip(c.weights, equal, strict=True))
        return (round(c.ndcg, 9), round(c.mrr, 9), -distance, -methods.index(c.method))

    def per_query(c: Candidate) -> np.ndarray:
        return gains[c.method][:, grid.index(c.weights)]

    best = max(candidates, key=preference)
    by_key = {(c.method, c.weights): c for c in candidates}
    singles = [
        by_key[(methods[0], tuple(1.0 if j == i else 0.0 for j in range(signals)))]
        for i in range(signals)
    ]
    default = by_key[(methods[0], equal)]
    top_values = per_query(best)
    close = [c for c in candidates if within_one_standard_error(top_values, per_query(c))]

    def simplicity(c: Candidate) -> tuple[int, int, float, float]:
        used = sum(1 for w in c.weights if w > 0)
        distance = sum(abs(a - b) for a, b in zip(c.weights, equal, strict=True))
        single = 0 if used == 1 else 1
        return (single, methods.index(c.method) if used > 1 else 0, round(distance, 6), -c.ndcg)

    best = min(close, key=simplicity)
    names = ["bm25", *lists.lists]
    alone = {name: single.ndcg for name, single in zip(names, singles, strict=True)}
    return best, candidates, alone, default.ndcg


def ranks_of(scores: np.ndarray, column: int) -> np.ndarray:
    """Per row of ``scores`` (one row per candidate weighting or mix), the rank of the
    document in ``column`` (1 = best; ties count in its favour)."""
    return 1 + (scores > scores[:, column][:, None]).sum(axis=1)


def ndcg_at_10(rank: np.ndarray) -> np.ndarray:
    """NDCG@10 of a query with one relevant document at ``rank``."""
    return np.where(rank <= 10, 1 / np.log2(rank + 1), 0.0)


def paired_difference(first: np.ndarray, second: np.ndarray) -> tuple[float, float] | None:
    """Mean and standard error of the per-query differences (None: fewer than two)."""
    difference = first - second
    if difference.size < 2:
        return None
    return float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(difference.size))


def clearly_better(candidate: np.ndarray, baseline: np.ndarray, margin: float) -> bool:
    """Whether ``candidate``'s per-query values beat ``baseline``'s by more than ``margin``
    and by more than :data:`CONFIDENCE` standard errors of the paired difference (about
    97.5% one-sided): a reranker is used only on clear evidence that it helps."""
    paired = paired_difference(candidate, baseline)
    if paired is None:
        return False
    mean, error = paired
    return mean > margin and mean > CONFIDENCE * error


def within_one_standard_error(best: np.ndarray, simpler: np.ndarray) -> bool:
    """Whether ``simpler``'s per-query values trail ``best``'s by at most one standard error
    of their paired difference."""
    paired = paired_difference(best, simpler)
    if paired is None:
        return True
    mean, error = paired
    return mean <= error


def choose_rerank_mix(
    source: Any,
    lists: PseudoLists,
    chosen: Candidate,
    reranker_id: str,
    *,
    show_progress: bool = False,
    should_stop: ShouldStop = never,
) -> RerankDecision:
    """The reranker judged on the chosen fusion's top :data:`RERANK_DEPTH` candidates of
    (at most :data:`RERANK_QUERIES`) pseudo-queries, with the sources masked. The share
    kept is the largest (the most first stage) within one standard error of the best, and
    it is used only when it beats the first stage's own order clearly
    (:func:`clearly_better`)."""
    reranker = source.reranker(reranker_id)
    documents = _Overlay(source.state().documents, lists.masked)
    method = FUSION_METHODS[chosen.method]
    weights = np.asarray(chosen.weights)
    shares = np.asarray(MIX_GRID)
    judged = list(zip(lists.queries, lists.runs, lists.query_vectors, strict=True))
    if len(judged) > RERANK_QUERIES:  # evenly over all kinds (cross-lingual ones come last)
        step = len(judged) / RERANK_QUERIES
        judged = [judged[int(i * step)] for i in range(RERANK_QUERIES)]
    gains = np.zeros((len(judged), len(MIX_GRID)))
    with progress_bar(len(judged), "tuning: rerank", enabled=show_progress) as advance:
        for row, (query, runs, vectors) in enumerate(judged):
            checkpoint(should_stop)
            advance(1)
            docs, matrix = method.matrix(runs)
            ranked = top(dict(zip(docs, (weights @ matrix).tolist(), strict=True)), RERANK_DEPTH)
            if query.relevant not in dict(ranked):
                continue
            outcome = rerank_candidates(
                reranker,
                SearchQuery(query.text),
                ranked,
                documents,
                document_image=source.document_image,
                stored_first_passage=_first_passages(source, lists, vectors),
                language=source.document_language,
            )
            scored = dict(outcome.scored)
            if query.relevant not in scored:
                continue  # the reranker could not read it
            ids = [d for d, _ in ranked if d in scored]
            first = dict(ranked)
            mixed = mix_scores(
                np.array([scored[d] for d in ids]), np.array([first[d] for d in ids]), shares
            )
            gains[row] = ndcg_at_10(ranks_of(mixed, ids.index(query.relevant)))
    ndcg = gains.mean(axis=0) if len(judged) else np.zeros(len(MIX_GRID))
    grid = {float(s): float(v) for s, v in zip(MIX_GRID, ndcg, strict=True)}
    without = len(MIX_GRID) - 1  # a share of 1: the first stage's own order
    best = max(range(len(MIX_GRID)), key=lambda i: (round(float(ndcg[i]), 9), MIX_GRID[i]))
    # shrink toward the first stage: the largest share within one standard error of the best
    best = max(
        i for i in range(len(MIX_GRID)) if within_one_standard_error(gains[:, best], gains[:, i])
    )
    if not clearly_better(gains[:, best], gains[:, without], MIN_RERANK_GAIN):
        best = without
    return RerankDecision(
        reranker_id,
        MIX_GRID[best],
        grid[1.0],
        grid[MIX_GRID[0]],
        grid[MIX_GRID[best]],
        grid,
        len(judged),
        RERANK_DEPTH,
    )


def _first_passages(source: Any, lists: PseudoLists, vectors: dict[str, Any]) -> Any:
    """For the rerank stage: the query's vector and each document's first passage vector (the
    masked one for a source document)."""
    state = source.state()
    keys = {source.embedder(m).model_id: m for m in lists.fields}

    def lookup(model_id: str) -> Any:
        key = keys.get(model_id)
        if key is None or key not in lists.masked_first_passage:  # no dense field
            return None
        stored = state.passages[field_name(key)]
        masked = lists.masked_first_passage[key]

        def first(candidate: str) -> Any:
            return masked[candidate] if candidate in masked else stored[candidate][1][0]

        return vectors[key], first

    return lookup


class _Overlay(Mapping[str, StoredDocument]):
    """The collection's documents with the sources masked."""

    def __init__(
        self, documents: Mapping[str, StoredDocument], masked: Mapping[str, StoredDocument]
    ) -> None:
        self._documents = documents
        self._masked = masked

    def __getitem__(self, doc_id: str) -> StoredDocument:
        return self._masked.get(doc_id) or self._documents[doc_id]

    def __iter__(self) -> Any:
        return iter(self._documents)

    def __len__(self) -> int:
        return len(self._documents)
