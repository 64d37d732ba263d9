"""After the first stage: the optional rerank of its best candidates, then the hits (each
document's scores per stage, and its best passage and highlights). One path serves a search's
own first stage (:meth:`Searcher.search_many`) and one supplied from elsewhere
(:meth:`Searcher.rerank_supplied`), so both rerank and report alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omniretrieve.index.diversity import collapse_duplicates, mmr
from omniretrieve.index.fusion_policy import FusionPolicy, mixed_with_first_stage
from omniretrieve.index.languages import LanguageCache
from omniretrieve.index.milvus_documents import prefetch
from omniretrieve.index.queries import SearchQuery, encode_queries
from omniretrieve.index.rerank_stage import StoredFirstPassage, rerank_candidates
from omniretrieve.index.results import SearchHit
from omniretrieve.index.search_source import SearchSource
from omniretrieve.index.settings import field_name
from omniretrieve.index.snippets import with_snippets


@dataclass(frozen=True)
class RerankChoice:
    """What a search's rerank stage does."""

    model_id: str
    share: float
    """The first stage's share of the reranked score (1: no rerank)."""
    want: int
    """Candidates the first stage hands over (the rerank's, when it reranks)."""
    instruction: str | None = None
    """For a reranker that takes one."""


@dataclass(frozen=True)
class Diversity:
    """What a search's diversity stage does (nothing by default)."""

    lam: float | None = None
    """MMR's lambda (None: no MMR)."""
    collapse_duplicates: bool = False

    @property
    def active(self) -> bool:
        return self.lam is not None or self.collapse_duplicates


class HitStage:
    def __init__(
        self, source: SearchSource, fusion: FusionPolicy, languages: LanguageCache
    ) -> None:
        self._source = source
        self._fusion = fusion
        self._languages = languages

    def choose(
        self,
        rerank: bool | str,
        rerank_share: float | None,
        top_k: int,
        *,
        diverse: bool = False,
        instruction: str | Mapping[str, str] | None = None,
    ) -> RerankChoice:
        """The reranker (the collection's for ``True``), its share, the candidates (the
        ``rerank_candidates`` best when reranking or diversifying, else ``top_k``) and its
        instruction (the search's, or the one a per-model mapping names it by)."""
        settings = self._source.settings
        model_id = settings.reranker if rerank is True else str(rerank)
        share = self._fusion.rerank_share(model_id, rerank_share) if rerank else 1.0
        if isinstance(instruction, Mapping):
            instruction = instruction.get(model_id)
        return RerankChoice(
            model_id,
            share,
            max(top_k, settings.rerank_candidates if rerank or diverse else top_k),
            instruction,
        )

    def finish(
        self,
        query: SearchQuery,
        ranked: list[tuple[str, float]],
        stage_scores: dict[str, dict[str, float]],
        choice: RerankChoice,
        top_k: int,
        *,
        rerank_vectors: dict[str, np.ndarray],
        snippet_vectors: Mapping[str, np.ndarray],
        snippets: bool,
        max_chars: int | None,
        diversity: Diversity,
    ) -> list[SearchHit]:
        """The query's hits: ``ranked`` reranked when the choice says so (the reranker's
        scores join ``stage_scores``), diversified when ``diversity`` says so, the best
        ``top_k``, with their snippets."""
        warnings: dict[str, str] = {}
        documents = self._source.state().documents
        if choice.share < 1.0:
            prefetch(documents, [d for d, _ in ranked[: self._source.settings.rerank_candidates]])
            ranked, warnings = self._rerank(choice, query, ranked, stage_scores, rerank_vectors)
        folded: dict[str, list[str]] = {}
        if diversity.active:
            pool = ranked[: self._source.settings.rerank_candidates]
            prefetch(documents, [d for d, _ in pool])
            ranked, folded = self._diversify(pool, diversity, top_k)
            if diversity.lam is not None:
                stage_scores["mmr"] = dict(ranked)
        prefetch(documents, [d for d, _ in ranked[:top_k]])
        hits = self._hits(ranked[:top_k], stage_scores, warnings, folded)
        if not snippets:
            return hits
        state = self._source.state()
        language = self._languages.document
        return with_snippets(hits, state, query.readable_text, language, snippet_vectors, max_chars)

    def _hits(
        self,
        ranked: Sequence[tuple[str, float]],
        stage_scores: dict[str, dict[str, float]],
        warnings: Mapping[str, str],
        folded: Mapping[str, list[str]],
    ) -> list[SearchHit]:
        documents = self._source.state().documents
        stages = list(stage_scores.items())
        hits = []
        for doc_id, score in ranked:
            document = documents[doc_id]
            scores = {stage: values[doc_id] for stage, values in stages if doc_id in values}
            hits.append(
                SearchHit(
                    doc_id,
                    float(score),
                    document.text,
                    document.metadata,
                    scores,
                    warnings.get(doc_id),
                    has_image=document.image is not None,
                    duplicates=list(folded.get(doc_id, ())),
                )
            )
        return hits

    def _diversify(
        self, pool: list[tuple[str, float]], diversity: Diversity, top_k: int
    ) -> tuple[list[tuple[str, float]], dict[str, list[str]]]:
        """Near-duplicates folded, then MMR, over one vector per document: the first passage
        vector of the collection's first vector field (none in a BM25-only collection: MMR
        then keeps the order, and duplicates are found by their texts)."""
        state = self._source.state()
        vectors: dict[str, np.ndarray] = {}
        for key in self._source.settings.embedders:
            per_doc = state.passages.get(field_name(key))
            if per_doc is not None:
                vectors = {d: per_doc[d][1][0] for d, _ in pool if d in per_doc}
                break
        folded: dict[str, list[str]] = {}
        if diversity.collapse_duplicates:
            collapsed = collapse_duplicates(pool, vectors, lambda d: state.documents[d].text)
            pool, folded = collapsed.kept, collapsed.duplicates
        if diversity.lam is not None:
            pool = mmr(pool, vectors, diversity.lam, top_k)
        return pool, folded

    def _rerank(
        self,
        choice: RerankChoice,
        query: SearchQuery,
        ranked: list[tuple[str, float]],
        stage_scores: dict[str, dict[str, float]],
        query_vectors: dict[str, np.ndarray],
    ) -> tuple[list[tuple[str, float]], dict[str, str]]:
        """The candidates re-ordered by the reranker (its z-scores mixed with the first
        stage's, the first stage weighing ``share``); those it cannot read keep their
        first-stage order after the scored ones, each with a warning saying why."""
        count = self._source.settings.rerank_candidates
        outcome = rerank_candidates(
            self._source.reranker(choice.model_id),
            query,
            ranked[:count],
            self._source.state().documents,
            document_image=self._source.document_image,
            stored_first_passage=self._stored_first_passage(query, query_vectors),
            language=self._languages.document,
            instruction=choice.instruction,
        )
        if not outcome.scored:
            return outcome.ranked + ranked[count:], outcome.warnings
        stage_scores["rerank"] = dict(outcome.scored)
        mixed = mixed_with_first_stage(outcome, ranked, choice.share)
        return mixed + ranked[count:], outcome.warnings

    def _stored_first_passage(
        self, query: SearchQuery, query_vectors: dict[str, np.ndarray]
    ) -> StoredFirstPassage:
        """For an embedder of this collection (by model id): the query's vector and, per
        document, its stored first passage vector; None for other embedders (or a query
        that field did not read)."""
        keys = {self._source.embedder(k).model_id: k for k in self._source.settings.embedders}

        def lookup(model_id: str) -> tuple[np.ndarray, Any] | None:
            key = keys.get(model_id)
            if key is None or not query.has_text or query.image is not None:
                return None
            if key not in query_vectors:  # (also when the search's own had an instruction)
                embedder = self._source.embedder(key)
                query_vectors[key] = encode_queries(embedder, [query], show_progress=False)[0]
            per_doc = self._source.state().passages[field_name(key)]
            return query_vectors[key], lambda doc_id: per_doc[doc_id][1][0]

        return lookup
