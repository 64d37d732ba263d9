"""The self-tuning half of :class:`~omniretrieve.index.collection.Collection`'s public API:
the fit it searches with, fitting anew, and what a fit reads and writes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext

from omniretrieve.index.languages import LanguageCache
from omniretrieve.index.model_protocols import IndexReranker
from omniretrieve.index.settings import CollectionSettings
from omniretrieve.index.store import CollectionStore
from omniretrieve.index.tuning.cancel import never
from omniretrieve.index.tuning.fit import CollectionTuning
from omniretrieve.index.tuning.sample import TuningSnapshot, take_snapshot
from omniretrieve.index.tuning.self_tune import PSEUDO_QUERIES, tune_guarded


class CollectionTuningMethods:
    """Mixed into :class:`~omniretrieve.index.collection.Collection`, which sets these
    attributes when it opens."""

    settings: CollectionSettings
    _tuning: CollectionTuning | None
    _store: CollectionStore
    _languages: LanguageCache
    _rerankers: Mapping[str, IndexReranker]

    def _check_writable(self) -> None:
        raise NotImplementedError

    def tuning(self) -> CollectionTuning | None:
        """The fusion and reranker mix fitted on pseudo-queries (None: not fitted yet)."""
        return self._tuning

    def tune(
        self,
        *,
        queries: int = PSEUDO_QUERIES,
        seed: int = 0,
        reranker: str | None = None,
        show_progress: bool = False,
        should_stop: Callable[[], bool] = never,
    ) -> CollectionTuning:
        """Fit this collection's fusion (method, weights per signal, whether to fuse at all)
        and its reranker's mix on ``queries`` pseudo-queries drawn from its documents (no
        labels), save it, and use it from now on where ``fusion`` is ``auto``. Upserts do
        this on their own when it is due (:func:`~omniretrieve.index.tuning.self_tune.
        tuning_due`; ``options.auto_tune``). ``should_stop`` cancels it between steps."""
        self._check_writable()
        return tune_guarded(
            self,
            nullcontext,
            queries=queries,
            seed=seed,
            reranker=reranker,
            show_progress=show_progress,
            should_stop=should_stop,
        )

    def tuning_snapshot(self, seed: int = 0) -> TuningSnapshot:
        """What a fit reads: the documents as of now, which later writes do not change
        (take it where no write runs: under the server's lock)."""
        return take_snapshot(self, self._languages, seed)

    def save_tuning(self, fitted: CollectionTuning) -> None:
        """Store a fit and search with it (no index is dropped: fusion reads it per search)."""
        self._check_writable()
        self._store.write_tuning(fitted.to_json())
        self._tuning = fitted

    def loaded_reranker(self) -> IndexReranker | None:
        """The collection's reranker, when it is loaded already (tuning asks, never loads)."""
        return self._rerankers.get(self.settings.reranker)
