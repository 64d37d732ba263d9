"""The rerank stage: the first stage's top candidates re-ordered by a reranker.

A reranker whose model declares :class:`StoredVectorScorer` (the offline hybrid reranker)
takes its dense evidence from the collection's stored first passage vectors when the
collection holds its embedder's field: the reranker would embed each document cut at the
model's length, which is exactly that passage, so nothing is embedded again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from omniretrieve.index.model_protocols import IndexEmbedder, IndexReranker
from omniretrieve.index.store import StoredDocument

StoredFirstPassage = Callable[[str], "tuple[np.ndarray, Callable[[str], np.ndarray]] | None"]
"""Embedder model id -> (the query's vector, document id -> its stored first passage vector),
or None when the collection holds no field of that embedder."""


@runtime_checkable
class StoredVectorScorer(Protocol):
    """A rerank model that can score from cosines the caller already has."""

    embedder: IndexEmbedder
    """Its embedder (``model_id`` names the field whose vectors it can use)."""

    def score_with_similarities(
        self, query: str, documents: Sequence[str], cosine: np.ndarray, languages: Sequence[str]
    ) -> np.ndarray: ...


def rerank_candidates(
    reranker: IndexReranker,
    query: str,
    candidates: Sequence[tuple[str, float]],
    documents: Mapping[str, StoredDocument],
    *,
    stored_first_passage: StoredFirstPassage,
    language: Callable[[str], str],
) -> list[tuple[str, float]]:
    """``candidates`` (document id, first-stage score) re-ordered by ``reranker``, with its
    scores; empty for no candidates."""
    if not candidates:
        return []
    texts = [documents[doc_id].text for doc_id, _ in candidates]
    model = reranker.model
    scorer = model if isinstance(model, StoredVectorScorer) else None
    stored = stored_first_passage(scorer.embedder.model_id) if scorer is not None else None
    if scorer is not None and stored is not None:
        query_vector, first_passage = stored
        cosine = np.array(
            [float(first_passage(doc_id) @ query_vector) for doc_id, _ in candidates],
            dtype=np.float32,
        )
        languages = [language(doc_id) for doc_id, _ in candidates]
        scores = scorer.score_with_similarities(query, texts, cosine, languages)
        order = np.argsort(-scores, kind="stable")
        return [(candidates[i][0], float(scores[i])) for i in order]
    response = reranker.rerank(query, texts, return_documents=False)
    return [(candidates[r.index][0], r.relevance_score) for r in response.results]
