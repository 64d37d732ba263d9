"""The rerank stage: each query's best ``rerank_candidates`` re-ordered by the reranker the
plan chose (:mod:`omniretrieve.index.candidate_rerank`: each candidate reaches it as what it
is), its scores mixed with the first stage's by the plan's share; those it cannot read keep
their first-stage order after the scored ones, each with a warning saying why."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from omniretrieve.index.candidate_rerank import (
    StoredFirstPassage,
    mixed_with_first_stage,
    rerank_candidates,
)
from omniretrieve.index.field_outputs import model_outputs
from omniretrieve.index.milvus_documents import prefetch
from omniretrieve.index.pipeline.state import QueryState, SearchPlan
from omniretrieve.index.queries import SearchQuery, encode_queries
from omniretrieve.index.search_source import SearchSource
from omniretrieve.index.settings import field_name
from omniretrieve.runtime.progress import progress_bar


def rerank(
    states: Sequence[QueryState],
    plan: SearchPlan,
    source: SearchSource,
    document_language: Callable[[str], str],
    show_progress: bool = False,
) -> None:
    """Each state's ranking reranked (the reranker's scores join its lists as ``rerank``)."""
    if not states:
        return
    choice = plan.rerank
    count = source.settings.rerank_candidates
    reranker = source.reranker(choice.model_id)
    documents = source.state().documents
    with progress_bar(len(states), "reranking", enabled=show_progress) as advance:
        for state in states:
            ranked = state.ranked
            prefetch(documents, [d for d, _ in ranked[:count]])
            own = {  # the vectors the reranker may reuse: those made without instruction
                m: v for m, v in state.vectors.items() if plan.instructions.get(m) is None
            }
            outcome = rerank_candidates(
                reranker,
                state.query,
                ranked[:count],
                documents,
                document_image=source.document_image,
                stored_first_passage=_stored_first_passage(source, state.query, own),
                language=document_language,
                instruction=choice.instruction,
            )
            state.warnings.update(outcome.warnings)
            if outcome.scored:
                state.lists["rerank"] = dict(outcome.scored)
                state.ranked = mixed_with_first_stage(outcome, ranked, choice.share)
            else:
                state.ranked = outcome.ranked
            state.ranked += ranked[count:]
            advance(1)


def _stored_first_passage(
    source: SearchSource, query: SearchQuery, query_vectors: dict[str, np.ndarray]
) -> StoredFirstPassage:
    """For an embedder of this collection (by model id): the query's vector and, per document,
    its stored first passage vector; None for other embedders (or a query that field did not
    read)."""
    keys = {source.embedder(k).model_id: k for k in source.settings.embedders}

    def lookup(model_id: str) -> tuple[np.ndarray, Any] | None:
        key = keys.get(model_id)
        if key is None or not query.has_text or query.image is not None:
            return None
        if "dense" not in model_outputs(source.embedder(key)):  # per-token vectors only
            return None
        if key not in query_vectors:  # (also when the search's own had an instruction)
            embedder = source.embedder(key)
            query_vectors[key] = encode_queries(embedder, [query], show_progress=False)[0]
        per_doc = source.state().passages[field_name(key)]
        return query_vectors[key], lambda doc_id: per_doc[doc_id][1][0]

    return lookup
