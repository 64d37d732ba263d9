"""Searching a collection: :class:`Searcher` runs the stages of
:mod:`omniretrieve.index.pipeline` in their order (planning -> first stages -> fusion -> rerank
-> diversity -> hits), each once per search whatever the number of queries (``search`` is a
batch of one); within :meth:`Searcher.reusing_first_stages` each query's lists are computed
once."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from omniretrieve.index.fusion_policy import FusionPolicy
from omniretrieve.index.languages import LanguageCache
from omniretrieve.index.milvus_sparse import MilvusSparse
from omniretrieve.index.pipeline.diversifying import diversify
from omniretrieve.index.pipeline.first_stages import FirstStages
from omniretrieve.index.pipeline.fusing import fuse
from omniretrieve.index.pipeline.hits import hits
from omniretrieve.index.pipeline.planning import FIRST_STAGE, MODES, plan_search
from omniretrieve.index.pipeline.reranking import rerank as rerank_stage
from omniretrieve.index.pipeline.state import SearchPlan
from omniretrieve.index.results import FirstStage, SearchHit
from omniretrieve.index.search_source import SearchSource
from omniretrieve.index.sparse_field import SparseField
from omniretrieve.index.vectors import VectorStore


class Searcher:
    def __init__(
        self,
        source: SearchSource,
        vectors: VectorStore,
        sparse: SparseField | MilvusSparse,
        languages: LanguageCache,
    ) -> None:
        self._source = source
        self._filters_itself = vectors.filters_itself
        self._languages = languages
        self._fusion = FusionPolicy(source)
        self._first_stages = FirstStages(source, vectors, sparse)

    def invalidate(self) -> None:
        """The documents changed: cached first stages are stale."""
        self._first_stages.invalidate()

    @property
    def cached_entries(self) -> int | None:
        """Entries held by :meth:`reusing_first_stages` (None outside it)."""
        return self._first_stages.cached_entries

    @contextmanager
    def reusing_first_stages(self) -> Iterator[None]:
        """Within the block, each query's BM25 list, its list per vector field and its query
        vectors are computed once and reused by later searches with the same filter (an
        evaluation runs several pipelines over the same queries). The memory they take (some
        kilobytes per query and list) is released when the block ends."""
        with self._first_stages.reusing():
            yield

    def search_many(
        self,
        queries: Sequence[Any],
        *,
        top_k: int = 10,
        mode: str = "hybrid",
        rerank: bool | str = False,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 (the API's field name)
        embedders: Sequence[str] | Literal["auto"] | None = None,
        fusion_weights: Sequence[float] | None = None,
        route_by_language: bool = False,
        show_progress: bool = False,
        instruction: str | Mapping[str, str] | None = None,
        max_chars: int | None = None,
        fusion_method: str | None = None,
        rerank_share: float | None = None,
        snippets: bool = True,
        diversity: float | None = None,
        collapse_duplicates: bool = False,
        outputs: Sequence[str] | None = None,
    ) -> list[list[SearchHit]]:
        """Search several queries with the same settings: their vectors are computed in one
        batch and the dense index is searched once for all of them.

        Each vector field gives the lists its model has (``dense:<model>``,
        ``sparse:<model>`` for learned token weights, ``multivector:<model>`` for late
        interaction); ``outputs`` (some of ``dense``, ``sparse``, ``multivector``) keeps
        those lists only.

        ``instruction`` goes to the embedders with the queries, and to a reranker that takes one
        (LLM yes/no rerankers; the others never see it): one for all, or per model
        (model id -> instruction; a named task such as BGE-Code's ``CosQA``, or any text).
        Each hit names its best passage and the query's terms in it (``passage``,
        ``highlights``); ``max_chars`` returns that much text from the passage instead of the
        whole document.

        A query is a text, an image or both (``{"text": ..., "image": ...}``, a composed
        query): BM25 and text-only embedders read its text and sit out for an image alone;
        image-capable embedders read all of it; a hit's ``scores`` name the stages that ran.
        ``embedders`` picks which of the collection's vector fields dense and hybrid search
        use: all of them by default; ``"auto"``: per query, the fields whose model covers the
        query's language (for hybrid search, none when no model covers it: BM25 alone; for
        dense search, all). ``fusion_weights`` (BM25's first, then one per field in use)
        overrides the collection's for this call; when routing, one per field named, of which
        each query uses those of its fields. ``route_by_language`` routes among the given
        ``embedders`` as ``"auto"`` does among all.

        Fusion follows the collection's ``fusion``: with ``auto``, the method, weights and
        reranker mix it fitted on pseudo-queries (:meth:`Collection.tune`). ``fusion_method``
        (a name in ``FUSION_METHODS``) and ``rerank_share`` (the first stage's share of the
        reranked score: 0 the reranker alone, 1 no rerank) override them for this call.
        ``snippets=False`` leaves out each hit's passage and highlights (evaluation needs ids
        and scores only; at 100 hits a query, finding them is most of the time).

        ``diversity`` (MMR's lambda in [0, 1]: 1 keeps the order, lower values favour hits
        unlike those above them) and ``collapse_duplicates`` (near-identical hits folded into
        the best of them, listed in its ``duplicates``) re-order the ranked list after the
        rerank, over the collection's ``rerank_candidates`` best (:mod:`.diversity`)."""
        plan = self._plan(
            queries,
            top_k=top_k,
            mode=mode,
            rerank=rerank,
            filter=filter,
            embedders=embedders,
            fusion_weights=fusion_weights,
            route_by_language=route_by_language,
            instruction=instruction,
            max_chars=max_chars,
            fusion_method=fusion_method,
            rerank_share=rerank_share,
            snippets=snippets,
            diversity=diversity,
            collapse_duplicates=collapse_duplicates,
            outputs=outputs,
        )
        return self._run(plan, show_progress)

    def rerank_supplied(
        self,
        queries: Sequence[Any],
        candidates: Sequence[Mapping[str, float]],
        *,
        top_k: int = 10,
        rerank: bool | str = True,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 (the API's field name)
        rerank_share: float | None = None,
        show_progress: bool = False,
        max_chars: int | None = None,
        snippets: bool = True,
        diversity: float | None = None,
    ) -> list[list[SearchHit]]:
        """Rerank a first stage computed elsewhere (a TREC run, another engine): per query,
        its ``candidates`` (document id -> score) take the place of this collection's first
        stage; the best ``rerank_candidates`` of them are reranked as :meth:`search_many`
        reranks its own (the same reranker, share and mix). Ids the collection does not hold
        (or the filter excludes) are dropped. ``diversity`` as in :meth:`search_many`."""
        plan = self._plan(
            queries,
            candidates=candidates,
            top_k=top_k,
            rerank=rerank,
            filter=filter,
            rerank_share=rerank_share,
            max_chars=max_chars,
            snippets=snippets,
            diversity=diversity,
        )
        return self._run(plan, show_progress)

    def first_stage_runs(
        self,
        queries: Sequence[Any],
        *,
        depth: int = FIRST_STAGE,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 (the API's field name)
        embedders: Sequence[str] | Literal["auto"] | None = None,
        route_by_language: bool = False,
        show_progress: bool = False,
    ) -> tuple[tuple[str, ...], list[FirstStage]]:
        """The lists hybrid search fuses, per query, before fusion: for choosing fusion
        weights without searching once per candidate weight (see :meth:`fuse_runs`). Returns
        the vector fields in play and, per query, its lists and the fields it used."""
        plan = self._plan(
            queries,
            top_k=depth,
            filter=filter,
            embedders=embedders,
            route_by_language=route_by_language,
        )
        states = self._first_stages.run(plan, show_progress)
        return plan.fields, [FirstStage(s.lists, s.used) for s in states]

    def fuse_runs(
        self,
        stage: FirstStage,
        fields: tuple[str, ...],
        fusion_weights: Sequence[float] | None = None,
        fusion_method: str | None = None,
    ) -> dict[str, float]:
        """Hybrid search's fused scores for one query's first stage (as search_many fuses
        them), with ``fusion_weights`` over BM25 and ``fields`` and ``fusion_method``
        (default: the collection's)."""
        weights = self._fusion.weights(stage.fields, fusion_weights, fields)
        method = self._fusion.method(fusion_method)
        return self._fusion.fuse(dict(stage.runs), weights, "hybrid", method)

    def _plan(self, queries: Sequence[Any], **options: Any) -> SearchPlan:
        return plan_search(
            self._source, self._fusion, queries, filters_itself=self._filters_itself, **options
        )

    def _run(self, plan: SearchPlan, show_progress: bool) -> list[list[SearchHit]]:
        """The plan's stages in order; a stage it does not ask for is skipped."""
        states = self._first_stages.run(plan, show_progress)
        if plan.supplied is None:
            fuse(states, plan, self._fusion)
        if plan.rerank.active:
            rerank_stage(states, plan, self._source, self._languages.document, show_progress)
        if plan.diversity.active:
            diversify(states, plan, self._source)
        return hits(states, plan, self._source, self._languages.document)


__all__ = ["FIRST_STAGE", "MODES", "Searcher"]
