"""Reranking one query's candidate list: the first stage's top candidates re-ordered by a
reranker (the search's rerank stage, :mod:`omniretrieve.index.pipeline.reranking`, and the
self-tuning fit call it), and the reranked scores mixed with the first stage's.

Each candidate reaches the reranker as what it is, through the inputs ``Reranker.rerank``
takes: a reranker that reads images gets a document's stored image (with the text it was
given with, when it has some: the text OCR read in the image is an index artifact, not part of
what the user gave); a text-only reranker gets the text (which holds the OCR text of an image,
when the collection read it). A candidate the reranker cannot read (an image without text, for a
text-only model), or every candidate when it cannot read the query, keeps its first-stage
order after the scored ones, with a warning: a search never fails for it.

A reranker whose model declares :class:`StoredVectorScorer` (the offline hybrid reranker)
takes its dense evidence from the collection's stored first passage vectors when the
collection holds its embedder's field: the reranker would embed each document cut at the
model's length, which is exactly that passage, so nothing is embedded again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from omniretrieve.fusion import mix_scores, top
from omniretrieve.index.model_protocols import IndexEmbedder, IndexReranker
from omniretrieve.index.queries import SearchQuery
from omniretrieve.index.store import StoredDocument
from omniretrieve.inputs import ImageInput, Input, MixedInput, TextInput

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


@dataclass(frozen=True)
class RerankOutcome:
    ranked: list[tuple[str, float]]
    """Every candidate: the scored ones best first (by rerank score), then the unread ones
    in their first-stage order (with their first-stage scores)."""
    scored: list[tuple[str, float]]
    """The candidates the reranker read, with its scores."""
    warnings: dict[str, str] = field(default_factory=dict)
    """Document id -> why the reranker did not read it."""


def document_input(
    document: StoredDocument, reads_images: bool, image: Callable[[StoredDocument], bytes]
) -> Input | None:
    """The document as the reranker reads it, None when it cannot read it at all: a reranker
    that reads images gets the image and the text it was given with (not what OCR read in
    the image, which is there for text-only models and the index); a text-only one, the text
    (OCR's included)."""
    if reads_images and document.image:
        picture = ImageInput(image(document))
        given = document.given_text
        return MixedInput(given, picture) if given.strip() else picture
    return TextInput(document.text) if document.text.strip() else None


def rerank_candidates(
    reranker: IndexReranker,
    query: SearchQuery,
    candidates: Sequence[tuple[str, float]],
    documents: Mapping[str, StoredDocument],
    *,
    document_image: Callable[[StoredDocument], bytes],
    stored_first_passage: StoredFirstPassage,
    language: Callable[[str], str],
    instruction: str | None = None,
) -> RerankOutcome:
    """``candidates`` (document id, first-stage score) re-ordered by ``reranker``;
    ``instruction`` reaches rerankers that take one (the others never see it)."""
    if not candidates:
        return RerankOutcome([], [])
    model = reranker.model
    reads_images = "image" in model.modalities
    if query.image is not None and not reads_images:
        if not query.reads_as_text:
            why = f"not reranked: {model.model_id} reads text only and the query is an image"
            return RerankOutcome(list(candidates), [], {d: why for d, _ in candidates})
        # a text-only reranker reads the query's text (and the image's OCR text)
        query = SearchQuery(query.readable_text)
    inputs = {
        doc_id: document_input(documents[doc_id], reads_images, document_image)
        for doc_id, _ in candidates
    }
    readable = [(d, s) for d, s in candidates if inputs[d] is not None]
    unread = [(d, s) for d, s in candidates if inputs[d] is None]
    why = (
        f"not reranked: {model.model_id} reads text only and this document is an image without text"
    )
    warnings = {d: why for d, _ in unread}
    if not readable:
        return RerankOutcome(list(candidates), [], warnings)
    if not getattr(model, "takes_instruction", False):
        instruction = None
    scored = _score(
        reranker,
        query,
        readable,
        [inputs[d] for d, _ in readable],
        stored_first_passage,
        language,
        instruction,
    )
    return RerankOutcome(scored + unread, scored, warnings)


def _score(
    reranker: IndexReranker,
    query: SearchQuery,
    candidates: Sequence[tuple[str, float]],
    inputs: Sequence[Input | None],
    stored_first_passage: StoredFirstPassage,
    language: Callable[[str], str],
    instruction: str | None,
) -> list[tuple[str, float]]:
    model = reranker.model
    scorer = model if isinstance(model, StoredVectorScorer) else None
    texts_only = all(isinstance(i, TextInput) for i in inputs) and query.image is None
    stored = (
        stored_first_passage(scorer.embedder.model_id)
        if scorer is not None and texts_only
        else None
    )
    if scorer is not None and stored is not None:
        texts = [i.text for i in inputs if isinstance(i, TextInput)]
        query_vector, first_passage = stored
        cosine = np.array(
            [float(first_passage(doc_id) @ query_vector) for doc_id, _ in candidates],
            dtype=np.float32,
        )
        languages = [language(doc_id) for doc_id, _ in candidates]
        scores = scorer.score_with_similarities(query.text, texts, cosine, languages)
        order = np.argsort(-scores, kind="stable")
        return [(candidates[i][0], float(scores[i])) for i in order]
    extra = {"instruction": instruction} if instruction is not None else {}
    response = reranker.rerank(query.as_input(), list(inputs), return_documents=False, **extra)
    return [(candidates[r.index][0], r.relevance_score) for r in response.results]


def mixed_with_first_stage(
    outcome: RerankOutcome, first_stage: Sequence[tuple[str, float]], share: float
) -> list[tuple[str, float]]:
    """The reranked candidates, their order and scores mixed with the first stage's
    (:func:`~omniretrieve.fusion.mix_scores`, the first stage weighing ``share``; 0: the
    reranker's own), then those it could not read in their first-stage order."""
    if share <= 0.0 or not outcome.scored:
        return outcome.ranked
    first = dict(first_stage)
    ids = [d for d, _ in outcome.scored]
    mixed = mix_scores(
        np.array([s for _, s in outcome.scored]),
        np.array([first[d] for d in ids]),
        np.array([share]),
    )[0]
    scored = top(dict(zip(ids, mixed.tolist(), strict=True)), len(ids))
    return scored + outcome.ranked[len(ids) :]
