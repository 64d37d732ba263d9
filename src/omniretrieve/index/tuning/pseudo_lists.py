"""The first-stage lists of pseudo-queries, computed as search computes them but over the
collection with each source document masked (its query cut out of it).

Masking cannot touch the collection's own indexes, so the lists are computed here: BM25 over
the documents (the collection's analysis and per-document languages) with the sources'
masked texts, and for each vector field exact cosine search over the stored passage vectors
with the sources' masked passages embedded afresh (a few hundred documents). A collection
larger than :data:`UNIVERSE` documents is represented by the sources plus a seeded sample of
the rest, so the fit costs the same for a million documents as for fifty thousand.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from omniretrieve.index.field_outputs import Fields, model_outputs
from omniretrieve.index.model_protocols import IndexEmbedder
from omniretrieve.index.queries import SearchQuery, encode_queries, encode_query_outputs
from omniretrieve.index.settings import CollectionSettings, field_name, list_name
from omniretrieve.index.store import StoredDocument, StoredState
from omniretrieve.index.token_search import MultiVectorRows, SparseRows
from omniretrieve.index.tuning.cancel import ShouldStop, checkpoint, never
from omniretrieve.index.tuning.pseudo_queries import PseudoQuery
from omniretrieve.runtime.progress import progress_bar
from omniretrieve.text.bm25 import Analyzer, BM25Index

UNIVERSE = 50_000
"""Documents the lists are computed over, at most (the sources always among them)."""
DEPTH = 100
"""Each list's length, as hybrid search's first stage (``FIRST_STAGE``)."""


class TunedSource(Protocol):
    """What the lists read from a collection."""

    settings: CollectionSettings

    def state(self) -> StoredState: ...

    def embedder(self, model_id: str) -> IndexEmbedder: ...

    def document_language(self, doc_id: str) -> str: ...

    def query_language(self, query: str) -> str: ...

    def passage_fields(self, model_id: str, documents: Sequence[StoredDocument]) -> Fields: ...


@dataclass
class PseudoLists:
    fields: tuple[str, ...]
    """The vector fields (model ids)."""
    lists: tuple[str, ...]
    """Each query's lists after BM25's, by name (``dense:<model>``, ``sparse:<model>``,
    ``multivector:<model>``)."""
    queries: list[PseudoQuery]
    runs: list[list[dict[str, float]]]
    """Per query: BM25's list, then one per name of ``lists`` (document id -> score, best
    ``DEPTH``)."""
    query_vectors: list[dict[str, np.ndarray]]
    """Per query: model id -> its vector."""
    masked_first_passage: dict[str, dict[str, np.ndarray]]
    """Model id -> source document id -> the masked document's first passage vector."""
    masked: dict[str, StoredDocument]
    """Source document id -> the document as the fit sees it (its query cut out)."""
    universe: int


def pseudo_lists(
    source: TunedSource,
    queries: Sequence[PseudoQuery],
    fields: tuple[str, ...],
    *,
    seed: int = 0,
    show_progress: bool = False,
    should_stop: ShouldStop = never,
) -> PseudoLists:
    state = source.state()
    masked = {q.doc_id: replace(state.documents[q.doc_id], text=q.masked) for q in queries}
    texts = [q.text for q in queries]
    needed = set(masked) | {q.relevant for q in queries}
    universe = _universe(list(state.documents), needed, seed)
    documents = {d: masked.get(d) or state.documents[d] for d in universe}
    bm25_runs = _bm25_runs(source, documents, texts, show_progress, should_stop)
    dense_runs: list[list[dict[str, float]]] = []
    query_vectors: list[dict[str, np.ndarray]] = [{} for _ in queries]
    masked_first: dict[str, dict[str, np.ndarray]] = {}
    names: list[str] = []
    how = source.settings.aggregate
    for model_id in fields:
        checkpoint(should_stop)
        embedder = source.embedder(model_id)
        outputs = model_outputs(embedder)
        seen = [SearchQuery(t) for t in texts]
        encoded = (
            [{"dense": v} for v in encode_queries(embedder, seen)]
            if outputs == ("dense",)
            else encode_query_outputs(embedder, seen, outputs)
        )
        fresh = source.passage_fields(model_id, list(masked.values()))
        for output in outputs:
            field = field_name(model_id, output)
            stored, masked_rows = state.passages.get(field, {}), fresh.get(field, {})
            rows = {
                d: masked_rows[d] if d in masked_rows else stored[d]
                for d in universe
                if d in masked_rows or d in stored
            }
            names.append(list_name(model_id, output))
            asked = [e[output] for e in encoded]
            if output == "dense":
                for row, vector in zip(query_vectors, asked, strict=True):
                    row[model_id] = vector
                masked_first[model_id] = {d: v[0] for d, (_, v) in masked_rows.items() if len(v)}
                passages = {d: v for d, (_, v) in rows.items()}
                dense_runs.append(_dense_runs(passages, np.stack(asked), how))
            elif output == "sparse":
                sparse = SparseRows(rows.items())
                dense_runs.append([sparse.search(q, DEPTH, None, how) for q in asked])
            else:
                multi = MultiVectorRows(rows.items(), embedder.model.multivector_reduce)
                dense_runs.append([multi.search(q, DEPTH, None, how) for q in asked])
    runs = [
        [bm25_runs[i], *[field_runs[i] for field_runs in dense_runs]] for i in range(len(queries))
    ]
    for query, lists in zip(queries, runs, strict=True):
        if query.target is not None:  # cross-lingual: its own document is not the answer
            for run in lists:
                run.pop(query.doc_id, None)
    return PseudoLists(
        fields,
        tuple(names),
        list(queries),
        runs,
        query_vectors,
        masked_first,
        masked,
        len(universe),
    )


def _universe(ids: list[str], needed: set[str], seed: int) -> list[str]:
    if len(ids) <= UNIVERSE:
        return ids
    others = sorted(set(ids) - needed)
    chosen = set(random.Random(seed).sample(others, UNIVERSE - len(needed)))
    return [d for d in ids if d in chosen or d in needed]


def _bm25_runs(
    source: TunedSource,
    documents: Mapping[str, StoredDocument],
    queries: Sequence[str],
    show_progress: bool,
    should_stop: ShouldStop,
) -> list[dict[str, float]]:
    ids = list(documents)
    analyzer = Analyzer(source.settings.language)
    languages = None
    if analyzer.language == "auto":
        languages = [source.document_language(d) for d in ids]
    index = BM25Index([documents[d].text for d in ids], analyzer=analyzer, languages=languages)
    runs: list[dict[str, float]] = []
    with progress_bar(len(queries), "tuning: BM25", enabled=show_progress) as advance:
        for query in queries:
            checkpoint(should_stop)
            language = source.query_language(query) if languages is not None else None
            scores = index.scores(query, language)
            runs.append(_best(ids, scores, positive=True))
            advance(1)
    return runs


def _dense_runs(
    passages: Mapping[str, np.ndarray | None], queries: np.ndarray, how: str
) -> list[dict[str, float]]:
    """Exact search over passage vectors, aggregated per document (max or sum) as the
    collection's vector store does."""
    ids = [d for d, v in passages.items() if v is not None and len(v)]
    if not ids:
        return [{} for _ in queries]
    blocks = [np.asarray(passages[d], dtype=np.float32) for d in ids]
    counts = np.array([len(b) for b in blocks])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    matrix = np.concatenate(blocks)
    reduce: Callable[..., np.ndarray] = np.maximum.reduceat if how == "max" else np.add.reduceat
    runs: list[dict[str, float]] = []
    for chunk in range(0, len(queries), 64):
        scores = queries[chunk : chunk + 64].astype(np.float32) @ matrix.T
        per_doc = reduce(scores, starts, axis=1)
        runs.extend(_best(ids, row, positive=False) for row in per_doc)
    return runs


def _best(ids: list[str], scores: np.ndarray, *, positive: bool) -> dict[str, float]:
    k = min(DEPTH, len(ids))
    best = np.argpartition(-scores, k - 1)[:k]
    if positive:
        best = best[scores[best] > 0]
    best = best[np.lexsort((best, -scores[best]))]
    return {ids[i]: float(scores[i]) for i in best.tolist()}
