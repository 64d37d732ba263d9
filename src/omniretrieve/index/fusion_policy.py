"""How a collection fuses its first-stage lists and mixes its reranker in: the method, the
weights and the reranker's share, from a search's own arguments, else the collection's
settings, else (``fusion="auto"``) the fit it made on pseudo-queries
(:mod:`omniretrieve.index.tuning`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from omniretrieve.errors import InputError
from omniretrieve.fusion.methods import FUSION_METHODS, fuse
from omniretrieve.index.field_outputs import model_lists, model_outputs
from omniretrieve.index.model_protocols import IndexEmbedder
from omniretrieve.index.settings import CollectionSettings
from omniretrieve.index.tuning.fit import CollectionTuning


class FusionSource(Protocol):
    """What the policy reads from its collection."""

    settings: CollectionSettings

    def embedder(self, model_id: str) -> IndexEmbedder: ...

    def tuning(self) -> CollectionTuning | None:
        """The fusion fitted on pseudo-queries (used where ``fusion`` is ``auto``)."""
        ...


class FusionPolicy:
    def __init__(self, source: FusionSource) -> None:
        self._source = source

    def tuned(self) -> CollectionTuning | None:
        """The collection's fit, where its ``fusion`` is ``auto``."""
        return self._source.tuning() if self._source.settings.fusion == "auto" else None

    def method(self, override: str | None) -> str:
        """The fusion method: given, the collection's fixed one, or the fitted one (z-score
        until there is a fit)."""
        if override is not None:
            if override not in FUSION_METHODS:
                raise InputError(
                    f"fusion_method must be one of {', '.join(FUSION_METHODS)}",
                    field="fusion_method",
                )
            return override
        if self._source.settings.fusion != "auto":
            return self._source.settings.fusion
        tuned = self.tuned()
        return tuned.method if tuned is not None else "zscore"

    def lists(self, models: Sequence[str], outputs: Sequence[str] | None = None) -> tuple[str, ...]:
        """The first-stage lists of these vector fields' models, in fusion order: each
        model's ``dense:``, ``sparse:`` and ``multivector:`` lists, those it has (of
        ``outputs``, when given)."""
        return tuple(
            name
            for model_id in models
            for name in model_lists(
                model_id,
                [
                    o
                    for o in model_outputs(self._source.embedder(model_id))
                    if outputs is None or o in outputs
                ],
            )
        )

    def weights(
        self,
        used: tuple[str, ...],
        override: Sequence[float] | None = None,
        fields: tuple[str, ...] | None = None,
        outputs: Sequence[str] | None = None,
    ) -> list[float] | None:
        """BM25's weight and those of the lists of the vector fields ``used`` (of
        ``outputs``, when given): from ``override`` (one per list of ``fields``, the fields
        in play), the collection's settings or its fit; None: equal weights."""
        used_lists = self.lists(used, outputs)
        if override is not None:
            named = used_lists if fields is None else self.lists(fields, outputs)
            if len(override) != 1 + len(named) or any(w < 0 for w in override):
                raise InputError(
                    "fusion_weights needs one non-negative weight for BM25 and one per list "
                    f"({', '.join(named) or 'none'}): {1 + len(named)} in all",
                    field="fusion_weights",
                )
            return [float(override[0])] + [float(override[1 + named.index(n)]) for n in used_lists]
        weights = self._source.settings.fusion_weights
        tuned = self.tuned()
        if weights is None and tuned is not None and all(n in tuned.lists for n in used_lists):
            return [tuned.weights[0]] + [
                tuned.weights[1 + tuned.lists.index(n)] for n in used_lists
            ]
        if weights is None:
            return None
        named = self.lists(self._source.settings.embedders)
        if len(weights) != 1 + len(named):
            raise InputError(
                f"the collection's fusion_weights has {len(weights)} weights; BM25 and its "
                f"lists ({', '.join(named)}) need one per list: {1 + len(named)} in all",
                field="fusion_weights",
            )
        return [weights[0]] + [weights[1 + named.index(n)] for n in used_lists]

    def fuse(
        self,
        stage_scores: dict[str, dict[str, float]],
        weights: list[float] | None,
        mode: str,
        method: str,
    ) -> dict[str, float]:
        """The first stage's ranking: fused lists in hybrid mode (and dense over several
        fields), else the one list. ``weights`` are BM25's and the fields'; BM25's is left
        out in dense mode and when BM25 sat out (an image alone). Weights that are all zero
        for the lists present (a fit that dropped the only signal this query has) count as
        equal weights."""
        if weights is not None and (mode == "dense" or "sparse" not in stage_scores):
            weights = weights[1:]
        if weights is not None and not any(weights):
            weights = None
        if mode == "hybrid" or (mode == "dense" and len(stage_scores) > 1):
            return fuse(FUSION_METHODS[method], list(stage_scores.values()), weights)
        return next(iter(stage_scores.values()))

    def rerank_share(self, model_id: str, override: float | None) -> float:
        """The first stage's share of the reranked score: given, or the collection's fit for
        its own reranker (``rerank=True``, or the collection's reranker by name, as the server
        passes it), else 0 (the reranker's order)."""
        if override is not None:
            if isinstance(override, bool) or not 0.0 <= float(override) <= 1.0:
                raise InputError("rerank_share must be within 0 and 1", field="rerank_share")
            return float(override)
        tuned = self.tuned()
        decision = tuned.rerank if tuned is not None else None
        own = model_id == self._source.settings.reranker
        if own and decision is not None and decision.reranker == model_id:
            return decision.first_stage_share
        return 0.0
