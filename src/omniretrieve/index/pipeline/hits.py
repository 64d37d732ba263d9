"""The hits: each query's best ``top_k`` with its scores per stage that ran, a warning where
a stage could not read it, the documents folded into it, and its best passage and the query's
terms in it (:mod:`omniretrieve.index.snippets`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from omniretrieve.index.milvus_documents import prefetch
from omniretrieve.index.pipeline.state import QueryState, SearchPlan
from omniretrieve.index.results import SearchHit
from omniretrieve.index.search_source import SearchSource
from omniretrieve.index.snippets import with_snippets


def hits(
    states: Sequence[QueryState],
    plan: SearchPlan,
    source: SearchSource,
    document_language: Callable[[str], str],
) -> list[list[SearchHit]]:
    """Per query, its hits (without passages and highlights when ``plan.snippets`` is off:
    at 100 hits a query, finding them is most of a search's time)."""
    results = []
    stored = source.state()
    for state in states:
        ranked = state.ranked[: plan.top_k]
        prefetch(stored.documents, [d for d, _ in ranked])
        stages = list(state.lists.items())
        found = []
        for doc_id, score in ranked:
            document = stored.documents[doc_id]
            found.append(
                SearchHit(
                    doc_id,
                    float(score),
                    document.text,
                    document.metadata,
                    {stage: values[doc_id] for stage, values in stages if doc_id in values},
                    state.warnings.get(doc_id),
                    has_image=document.image is not None,
                    duplicates=list(state.duplicates.get(doc_id, ())),
                )
            )
        if plan.snippets:
            found = with_snippets(
                found,
                stored,
                state.query.readable_text,
                document_language,
                state.vectors,
                plan.max_chars,
            )
        results.append(found)
    return results
