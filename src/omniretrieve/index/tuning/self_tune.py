"""A collection tunes its own search: pseudo-queries drawn from its documents choose the
fusion (method and weights) and whether, and how much, its reranker is trusted. The fitter
reads the collection's documents and vectors only: no queries, no relevance labels."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from omniretrieve.errors import CollectionNotFoundError, InputError, TuningCancelledError
from omniretrieve.index.candidate_rerank import StoredVectorScorer
from omniretrieve.index.settings import CollectionSettings
from omniretrieve.index.store import CollectionStore
from omniretrieve.index.tuning.cancel import ShouldStop, checkpoint, never
from omniretrieve.index.tuning.cross_lingual import cross_lingual_queries
from omniretrieve.index.tuning.fit import CollectionTuning, choose_fusion, choose_rerank_mix
from omniretrieve.index.tuning.pseudo_lists import pseudo_lists
from omniretrieve.index.tuning.pseudo_queries import draw_pseudo_queries
from omniretrieve.index.tuning.sample import TuningSnapshot
from omniretrieve.models.registry import DEFAULT_EMBEDDER, DEFAULT_RERANKER

log = logging.getLogger("omniretrieve.index")
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
    should_stop: ShouldStop = never,
) -> CollectionTuning:
    """Fit ``source``'s (a :class:`~omniretrieve.index.collection.Collection`, or a
    snapshot of one: :meth:`~omniretrieve.index.collection.Collection.tuning_snapshot`)
    fusion over BM25 and ``embedders`` (default: all its vector fields) and the mix of
    ``reranker`` (default: the collection's; ``""``: none) from ``queries``
    pseudo-queries. ``should_stop`` is asked between steps; when it says so the fit raises
    :class:`TuningCancelledError`."""
    model_id = source.settings.reranker if reranker is None else reranker
    fits = tune_for_rerankers(
        source,
        [model_id],
        embedders=embedders,
        queries=queries,
        seed=seed,
        show_progress=show_progress,
        should_stop=should_stop,
    )
    return fits[model_id]


def tune_for_rerankers(
    source: Any,
    rerankers: Sequence[str],
    *,
    embedders: Sequence[str] | None = None,
    queries: int = PSEUDO_QUERIES,
    seed: int = 0,
    show_progress: bool = False,
    should_stop: ShouldStop = never,
) -> dict[str, CollectionTuning]:
    """:func:`tune` for several rerankers at once (``""``: none), by reranker id: the
    pseudo-queries, their lists and the fusion are computed once and shared (the fusion does
    not depend on the reranker); only each reranker's mix is judged on its own."""
    started = time.perf_counter()
    fields = tuple(embedders) if embedders is not None else tuple(source.settings.embedders)
    if not fields:
        raise InputError("a BM25-only collection has nothing to fuse", field="embedders")
    if not isinstance(source, TuningSnapshot):
        source = source.tuning_snapshot(seed)
    total = source.documents_total
    state = source.state()
    drawn = draw_pseudo_queries(state.documents, queries, seed)
    checkpoint(should_stop)
    if len(drawn) < MIN_PSEUDO_QUERIES:
        raise InputError(
            f"collection {source.name!r} yields {len(drawn)} pseudo-queries (at least "
            f"{MIN_PSEUDO_QUERIES} are needed: documents with a few sentences of text)",
            field="collection",
        )
    drawn += cross_lingual_queries(source, drawn, fields)
    checkpoint(should_stop)
    lists = pseudo_lists(
        source, drawn, fields, seed=seed, show_progress=show_progress, should_stop=should_stop
    )
    best, candidates, alone, equal = choose_fusion(lists)
    fits = {}
    for model_id in dict.fromkeys(rerankers):
        checkpoint(should_stop)
        decision = (
            choose_rerank_mix(
                source,
                lists,
                best,
                model_id,
                show_progress=show_progress,
                should_stop=should_stop,
            )
            if model_id
            else None
        )
        fits[model_id] = CollectionTuning(
            method=best.method,
            embedders=lists.lists,
            weights=best.weights,
            ndcg=best.ndcg,
            equal_ndcg=equal,
            alone=alone,
            candidates=candidates,
            rerank=decision,
            queries=len(drawn),
            kinds=dict(Counter(q.kind for q in drawn)),
            documents=total,
            universe=lists.universe,
            seed=seed,
            seconds=round(time.perf_counter() - started, 3),
        )
    return fits


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
    except ValueError as exc:  # the schema's verdict (the store caught unreadable files)
        store.warn_tuning_unread(f"not a fit this version reads: {exc}")
        return None


def tune_guarded(
    collection: Any,
    guard: Callable[[], AbstractContextManager[Any]],
    *,
    seed: int = 0,
    should_stop: ShouldStop = never,
    **options: Any,
) -> CollectionTuning:
    """:func:`tune` where ``guard`` (a server's lock on the collection) is held only while
    the snapshot is taken and while the fit is saved: searches and writes go on while it is
    computed. Options as :func:`tune`."""
    with guard():
        snapshot = collection.tuning_snapshot(seed)
    fitted = tune(snapshot, seed=seed, should_stop=should_stop, **options)
    with guard():
        collection.save_tuning(fitted)
    return fitted


def refit_guarded(
    collection: Any,
    guard: Callable[[], AbstractContextManager[Any]],
    *,
    show_progress: bool = False,
    should_stop: ShouldStop = never,
) -> CollectionTuning | None:
    """The refit an upsert makes when it is due (None: not due, too small to judge, or it
    did not finish), guarded as :func:`tune_guarded`. It never raises: the upsert that made
    it due was acknowledged, and a fit that fails is a warning (the last fit stays)."""
    try:
        with guard():
            if not tuning_due(collection.settings, collection.tuning(), len(collection)):
                return None
            snapshot = collection.tuning_snapshot()
            previous = collection.tuning()
            loaded = collection.loaded_reranker()
        fitted = refit_after_upsert(snapshot, previous, loaded, show_progress, should_stop)
        if fitted is not None:
            with guard():
                collection.save_tuning(fitted)
        return fitted
    except (TuningCancelledError, CollectionNotFoundError):
        return None  # stopped, or the collection was dropped or closed meanwhile
    except Exception as exc:  # the write stays acknowledged whatever the fit does
        log.warning(
            "collection %s: refitting its fusion failed (%s: %s); it keeps its last fit",
            collection.name,
            type(exc).__name__,
            exc,
        )
        return None


def refit_after_upsert(
    source: Any,
    previous: CollectionTuning | None,
    loaded_reranker: Any,
    show_progress: bool = False,
    should_stop: ShouldStop = never,
) -> CollectionTuning | None:
    """The refit an upsert makes (None: the collection is too small to judge). The reranker
    is judged only when that is cheap (:func:`reranker_reads_stored_vectors`); otherwise the
    last decision on it is kept (``Collection.tune()`` judges any reranker)."""
    cheap = reranker_reads_stored_vectors(source, loaded_reranker)
    try:
        fitted = tune(
            source,
            reranker=None if cheap else "",
            show_progress=show_progress,
            should_stop=should_stop,
        )
    except InputError:
        return None
    kept = previous.rerank if previous is not None else None
    if not cheap and kept is not None and kept.reranker == source.settings.reranker:
        fitted = replace(fitted, rerank=kept)
    return fitted


def reranker_reads_stored_vectors(source: Any, loaded_reranker: Any) -> bool:
    """Whether the collection's reranker scores from its stored vectors (no embedding):
    asked of the model when it is loaded; otherwise true only for the bundled reranker over a
    collection that holds its embedder's field (loading a model to ask is what this avoids)."""
    settings = source.settings
    if loaded_reranker is not None:
        model = loaded_reranker.model
        fields = {source.embedder(m).model_id for m in settings.embedders}
        return isinstance(model, StoredVectorScorer) and model.embedder.model_id in fields
    return settings.reranker == DEFAULT_RERANKER and DEFAULT_EMBEDDER in settings.embedders
