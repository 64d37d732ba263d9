"""Fusion: each query's first-stage lists made one ranking, by the collection's method and
weights (or the fit it made on pseudo-queries, :class:`~omniretrieve.index.fusion_policy.
FusionPolicy`); the ranking's best candidates go on to the next stage."""

from __future__ import annotations

from collections.abc import Sequence

from omniretrieve.fusion import top
from omniretrieve.index.fusion_policy import FusionPolicy
from omniretrieve.index.pipeline.state import QueryState, SearchPlan


def fuse(states: Sequence[QueryState], plan: SearchPlan, policy: FusionPolicy) -> None:
    """Each state's ``ranked``: its lists fused (in hybrid mode and dense over several
    fields, kept as its ``fused`` list), cut to the candidates the rerank takes."""
    assert plan.mode is not None
    for state in states:
        weights = policy.weights(state.used, plan.fusion_weights, plan.fields, plan.outputs)
        fused = policy.fuse(state.lists, weights, plan.mode, plan.fusion_method)
        if plan.mode == "hybrid" or len(state.lists) > 1:
            state.lists["fused"] = fused
        state.ranked = top(fused, plan.rerank.want)
