"""Diversity: near-identical candidates folded into the best of them, then maximal marginal
relevance over the collection's ``rerank_candidates`` best (the algorithms are in
:mod:`omniretrieve.index.diversity`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omniretrieve.index.diversity import collapse_duplicates, mmr
from omniretrieve.index.milvus_documents import prefetch
from omniretrieve.index.pipeline.state import QueryState, SearchPlan
from omniretrieve.index.search_source import SearchSource
from omniretrieve.index.settings import field_name


def diversify(states: Sequence[QueryState], plan: SearchPlan, source: SearchSource) -> None:
    """Each state's ranking folded and re-ordered as ``plan.diversity`` asks, over one vector
    per document: the first passage vector of the collection's first vector field (none in a
    BM25-only collection: MMR then keeps the order, and duplicates are found by their
    texts). MMR's values join the state's lists as ``mmr``."""
    state_now = source.state()
    documents = state_now.documents
    diversity = plan.diversity
    for state in states:
        pool = state.ranked[: source.settings.rerank_candidates]
        prefetch(documents, [d for d, _ in pool])
        vectors: dict[str, np.ndarray] = {}
        for key in source.settings.embedders:
            per_doc = state_now.passages.get(field_name(key))
            if per_doc is not None:
                vectors = {d: per_doc[d][1][0] for d, _ in pool if d in per_doc}
                break
        if diversity.collapse_duplicates:
            collapsed = collapse_duplicates(pool, vectors, lambda d: documents[d].text)
            pool, state.duplicates = collapsed.kept, collapsed.duplicates
        if diversity.lam is not None:
            pool = mmr(pool, vectors, diversity.lam, plan.top_k)
            state.lists["mmr"] = dict(pool)
        state.ranked = pool
