"""A collection tunes its own search: pseudo-queries drawn from its documents choose the
fusion (method and weights) and whether, and how much, its reranker is trusted. The fitter
reads the collection's documents and vectors only: no queries, no relevance labels."""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

from omniretrieve.errors import InputError
from omniretrieve.index.settings import CollectionSettings
from omniretrieve.index.store import CollectionStore
from omniretrieve.index.tuning.cross_lingual import cross_lingual_queries
from omniretrieve.index.tuning.fit import CollectionTuning, choose_fusion, choose_rerank_mix
from omniretrieve.index.tuning.pseudo_lists import pseudo_lists
from omniretrieve.index.tuning.pseudo_queries import draw_pseudo_queries

PSEUDO_QUERIES = 400
MIN_DOCUMENTS = 100
"""Upserts tune a collection once it holds this many documents."""
DRIFT = 1.5
"""...and again when it has grown or shrunk by this factor since the last fit."""
MIN_PSEUDO_QUERIES = 20
"""Fewer than this and the collection keeps equal weights (nothing to judge by)."""


def tune(
    source: Any,
    *,
    embedders: Sequence[str] | None = None,
    reranker: str | None = None,
    queries: int = PSEUDO_QUERIES,
    seed: int = 0,
    show_progress: bool = False,
) -> CollectionTuning:
    """Fit ``source``'s (a :class:`~omniretrieve.index.collection.Collection`) fusion over
    BM25 and ``embedders`` (default: all its vector fields) and the mix of ``reranker``
    (default: the collection's; ``""``: none) from ``queries`` pseudo-queries."""
    started = time.perf_counter()
    fields = tuple(embedders) if embedders is not None else tuple(source.settings.embedders)
    if not fields:
        raise InputError("a BM25-only collection has nothing to fuse", field="embedders")
    state = source.state()
    drawn = draw_pseudo_queries(state.documents, queries, seed)
    if len(drawn) < MIN_PSEUDO_QUERIES:
        raise InputError(
            f"collection {source.name!r} yields {len(drawn)} pseudo-queries (at least "
            f"{MIN_PSEUDO_QUERIES} are needed: documents with a few sentences of text)",
            field="collection",
        )
    drawn += cross_lingual_queries(source, drawn, fields)
    lists = pseudo_lists(source, drawn, fields, seed=seed, show_progress=show_progress)
    best, candidates, alone, equal = choose_fusion(lists)
    model_id = source.settings.reranker if reranker is None else reranker
    decision = (
        choose_rerank_mix(source, lists, best, model_id, show_progress=show_progress)
        if model_id
        else None
    )
    return CollectionTuning(
        method=best.method,
        embedders=fields,
        weights=best.weights,
        ndcg=best.ndcg,
        equal_ndcg=equal,
        alone=alone,
        candidates=candidates,
        rerank=decision,
        queries=len(drawn),
        kinds=dict(Counter(q.kind for q in drawn)),
        documents=len(state.documents),
        universe=lists.universe,
        seed=seed,
        seconds=round(time.perf_counter() - started, 3),
    )


def tuning_due(
    settings: CollectionSettings, tuning: CollectionTuning | None, documents: int
) -> bool:
    """Whether an upsert should (re)fit: ``fusion`` is ``auto`` and there is no fit, or the
    fit was made on other embedders or another reranker, or on a collection of a size
    :data:`DRIFT` times away from this one."""
    if settings.fusion != "auto" or not settings.embedders or documents < MIN_DOCUMENTS:
        return False
    if tuning is None or tuning.embedders != tuple(settings.embedders):
        return True
    if tuning.rerank is not None and tuning.rerank.reranker != settings.reranker:
        return True
    return not tuning.documents / DRIFT < documents < tuning.documents * DRIFT


def read_tuning(store: CollectionStore) -> CollectionTuning | None:
    """A collection's stored fit (None: none, or unreadable, with a warning)."""
    data = store.read_tuning()
    if data is None:
        return None
    try:
        return CollectionTuning.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        warnings.warn(
            f"{store.tuning_path} is not a fit this version reads ({exc}); searching with "
            "equal fusion weights until the collection is tuned again",
            stacklevel=2,
        )
        return None
