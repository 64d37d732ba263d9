"""Searching a collection: the plan (queries checked, fields, filter, depth), the first
stages (BM25 and each vector field, with per-query language routing) and fusion with weights;
the optional rerank and the hits follow in :mod:`omniretrieve.index.hit_stage`. One path serves
one query and many (``search`` is a batch of one); within :meth:`Searcher.reusing_first_stages`
each query's lists are computed once."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.fusion import top
from omniretrieve.index.diversity import check_diversity
from omniretrieve.index.fusion_policy import FusionPolicy
from omniretrieve.index.hit_stage import Diversity, HitStage
from omniretrieve.index.languages import LanguageCache
from omniretrieve.index.milvus_documents import prefetch
from omniretrieve.index.milvus_sparse import MilvusSparse
from omniretrieve.index.queries import (
    SearchQuery,
    check_readable,
    encode_queries,
    parse_queries,
)
from omniretrieve.index.results import FirstStage, SearchHit
from omniretrieve.index.search_source import SearchSource
from omniretrieve.index.settings import field_name
from omniretrieve.index.sparse_field import SparseField
from omniretrieve.index.store import StoredDocument
from omniretrieve.index.vectors import VectorStore
from omniretrieve.runtime.progress import progress_bar

MODES: tuple[str, ...] = ("dense", "sparse", "hybrid")
FIRST_STAGE = 100
"""Candidates each first-stage list contributes to hybrid fusion."""


@dataclass(frozen=True)
class SearchPlan:
    mode: str
    fields: tuple[str, ...]
    routing: bool
    allowed: set[str] | None
    filter: Mapping[str, Any] | None
    filter_key: str | None
    depth: int
    instructions: Mapping[str, str | None] = field(default_factory=dict)
    """Per vector field, the query instruction its embedder gets (None: its default)."""


def check_limits(top_k: int, max_chars: int | None) -> None:
    """``top_k`` and ``max_chars`` are positive integers (``max_chars`` may be None)."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InputError("top_k must be a positive integer", field="top_k")
    if max_chars is not None and (
        isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1
    ):
        raise InputError("max_chars must be a positive integer", field="max_chars")


def matches(value: Any, condition: Any) -> bool:
    if isinstance(condition, Mapping):
        if set(condition) != {"in"} or not isinstance(condition["in"], list):
            raise InputError('a filter condition is a value or {"in": [values]}', field="filter")
        return value in condition["in"]
    return value == condition


class Searcher:
    def __init__(
        self,
        source: SearchSource,
        vectors: VectorStore,
        sparse: SparseField | MilvusSparse,
        languages: LanguageCache,
    ) -> None:
        self._source = source
        self._vectors = vectors
        self._sparse = sparse
        self._languages = languages
        self._fusion = FusionPolicy(source)
        self._hit_stage = HitStage(source, self._fusion, languages)
        self._stage_cache: dict[tuple[Any, ...], Any] | None = None

    def invalidate(self) -> None:
        """The documents changed: cached first stages are stale."""
        if self._stage_cache is not None:
            self._stage_cache = {}

    @property
    def cached_entries(self) -> int | None:
        """Entries held by :meth:`reusing_first_stages` (None outside it)."""
        return None if self._stage_cache is None else len(self._stage_cache)

    @contextmanager
    def reusing_first_stages(self) -> Iterator[None]:
        """Within the block, each query's BM25 list, its list per vector field and its query
        vectors are computed once and reused by later searches with the same filter (an
        evaluation runs several pipelines over the same queries). The memory they take (some
        kilobytes per query and list) is released when the block ends."""
        previous = self._stage_cache
        if previous is None:
            self._stage_cache = {}
        try:
            yield
        finally:
            self._stage_cache = previous

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
    ) -> list[list[SearchHit]]:
        """Search several queries with the same settings: their vectors are computed in one
        batch and the dense index is searched once for all of them.

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
        check_limits(top_k, max_chars)
        check_diversity(diversity)
        parsed = parse_queries(queries)
        choice = self._hit_stage.choose(
            rerank,
            rerank_share,
            top_k,
            diverse=diversity is not None or collapse_duplicates,
            instruction=instruction,
        )
        plan = self._plan(
            parsed, mode, filter, embedders, route_by_language, choice.want, instruction
        )
        self._fusion.weights(plan.fields, fusion_weights, plan.fields)  # checked before work
        method = self._fusion.method(fusion_method)
        dense_runs, query_vectors = self._dense_stage(parsed, plan, show_progress)
        results: list[list[SearchHit]] = []
        with progress_bar(len(parsed), "searching", enabled=show_progress) as advance:
            for position, query in enumerate(parsed):
                stage_scores, used = self._query_stages(query, dense_runs[position], plan)
                weights = self._fusion.weights(used, fusion_weights, plan.fields)
                first = self._fusion.fuse(stage_scores, weights, mode, method)
                if mode == "hybrid" or len(stage_scores) > 1:
                    stage_scores["fused"] = first
                own = {  # the vectors the reranker may reuse: those made without instruction
                    m: v
                    for m, v in query_vectors[position].items()
                    if plan.instructions.get(m) is None
                }
                hits = self._hit_stage.finish(
                    query,
                    top(first, choice.want),
                    stage_scores,
                    choice,
                    top_k,
                    rerank_vectors=own,
                    snippet_vectors=query_vectors[position],
                    snippets=snippets,
                    max_chars=max_chars,
                    diversity=Diversity(diversity, collapse_duplicates),
                )
                results.append(hits)
                advance(1)
        return results

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
        if len(candidates) != len(queries):
            raise InputError("one candidate list per query", field="candidates")
        check_limits(top_k, max_chars)
        check_diversity(diversity)
        parsed = parse_queries(queries)
        documents = self._source.state().documents
        choice = self._hit_stage.choose(rerank, rerank_share, top_k, diverse=diversity is not None)
        results: list[list[SearchHit]] = []
        with progress_bar(len(parsed), "reranking", enabled=show_progress) as advance:
            for query, supplied in zip(parsed, candidates, strict=True):
                prefetch(documents, supplied)
                kept = {
                    doc_id: float(score)
                    for doc_id, score in supplied.items()
                    if doc_id in documents and self._passes(documents[doc_id], filter)
                }
                hits = self._hit_stage.finish(
                    query,
                    top(kept, choice.want),
                    {"candidates": kept},
                    choice,
                    top_k,
                    rerank_vectors={},
                    snippet_vectors={},
                    snippets=snippets,
                    max_chars=max_chars,
                    diversity=Diversity(diversity),
                )
                results.append(hits)
                advance(1)
        return results

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
        parsed = parse_queries(queries)
        plan = self._plan(parsed, "hybrid", filter, embedders, route_by_language, depth)
        dense_runs, _ = self._dense_stage(parsed, plan, show_progress)
        stages = []
        with progress_bar(len(parsed), "first stage", enabled=show_progress) as advance:
            for query, dense in zip(parsed, dense_runs, strict=True):
                runs, used = self._query_stages(query, dense, plan)
                stages.append(FirstStage(runs, used))
                advance(1)
        return plan.fields, stages

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

    def _plan(
        self,
        queries: Sequence[SearchQuery],
        mode: str,
        filter: Mapping[str, Any] | None,  # noqa: A002
        embedders: Sequence[str] | Literal["auto"] | None,
        route_by_language: bool,
        want: int,
        instruction: str | Mapping[str, str] | None = None,
    ) -> SearchPlan:
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}; got {mode!r}", field="mode")
        routing = route_by_language or embedders == "auto"
        chosen = None if embedders == "auto" else embedders
        fields = self._vector_fields(chosen)
        if mode == "dense" and not fields:
            raise InputError(
                f"collection {self._source.name!r} holds no vectors (BM25 only): use mode 'sparse'",
                field="mode",
            )
        check_readable(queries, mode, fields, lambda m: self._source.embedder(m).modalities)
        allowed = self._filter(filter) if filter and not self._vectors.filters_itself else None
        filter_key = json.dumps(filter, sort_keys=True, default=str) if filter else None
        instructions = {
            m: instruction
            if isinstance(instruction, str) or instruction is None
            else instruction.get(m)
            for m in fields
        }
        return SearchPlan(
            mode,
            fields,
            routing,
            allowed,
            filter,
            filter_key,
            max(want, FIRST_STAGE),
            instructions,
        )

    def _dense_stage(
        self, queries: Sequence[SearchQuery], plan: SearchPlan, show_progress: bool
    ) -> tuple[list[dict[str, dict[str, float]]], list[dict[str, np.ndarray]]]:
        """Per query, each vector field's list and its vectors per field (fields that cannot
        read the query, a text-only model and an image alone, sit out)."""
        dense_runs: list[dict[str, dict[str, float]]] = [{} for _ in queries]
        query_vectors: list[dict[str, np.ndarray]] = [{} for _ in queries]
        if plan.mode not in ("dense", "hybrid"):
            return dense_runs, query_vectors
        cache = self._stage_cache if self._stage_cache is not None else {}
        for model_id in plan.fields:
            with_images = any(q.image is not None for q in queries)
            reads_images = with_images and "image" in self._source.embedder(model_id).modalities
            read = [i for i, q in enumerate(queries) if reads_images or q.reads_as_text]
            if not read:
                continue
            # what the model reads: the whole query, or (text-only models) its text and the
            # image's OCR text
            seen = [
                queries[i] if reads_images else SearchQuery(queries[i].readable_text) for i in read
            ]
            vectors, runs = self._cached_dense(model_id, seen, plan, cache, show_progress)
            for index, vector, run in zip(read, vectors, runs, strict=True):
                query_vectors[index][model_id] = vector
                dense_runs[index][f"dense:{model_id}"] = run
        return dense_runs, query_vectors

    def _cached_dense(
        self,
        model_id: str,
        queries: Sequence[SearchQuery],
        plan: SearchPlan,
        cache: dict[tuple[Any, ...], Any],
        show_progress: bool,
    ) -> tuple[np.ndarray, list[dict[str, float]]]:
        """One field's query vectors and lists, computing only what ``cache`` lacks (the
        stage cache, or a fresh dict outside :meth:`reusing_first_stages`)."""
        instruction = plan.instructions.get(model_id)
        run_key = ("dense", model_id, instruction, plan.depth, plan.filter_key)
        vector_key = ("vector", model_id, instruction)
        missing = list({q.key: q for q in queries if (*run_key, q.key) not in cache}.values())
        unencoded = [q for q in missing if (*vector_key, q.key) not in cache]
        if unencoded:
            encoded = self._encode_queries(model_id, unencoded, show_progress, instruction)
            for query, vector in zip(unencoded, encoded, strict=True):
                cache[(*vector_key, query.key)] = vector
        if missing:
            vectors = np.stack([cache[(*vector_key, q.key)] for q in missing])
            runs = self._vectors.search(
                field_name(model_id), vectors, plan.depth, plan.allowed, plan.filter
            )
            for query, run in zip(missing, runs, strict=True):
                cache[(*run_key, query.key)] = run
        vectors = np.stack([cache[(*vector_key, q.key)] for q in queries])
        return vectors, [cache[(*run_key, q.key)] for q in queries]

    def _encode_queries(
        self,
        model_id: str,
        queries: Sequence[SearchQuery],
        show_progress: bool,
        instruction: str | None = None,
    ) -> np.ndarray:
        return encode_queries(
            self._source.embedder(model_id),
            queries,
            show_progress=show_progress,
            instruction=instruction,
        )

    def _query_stages(
        self, query: SearchQuery, dense: dict[str, dict[str, float]], plan: SearchPlan
    ) -> tuple[dict[str, dict[str, float]], tuple[str, ...]]:
        """One query's lists (BM25's first) and the vector fields it uses."""
        mode = plan.mode
        text = query.readable_text
        fields = tuple(m for m in plan.fields if f"dense:{m}" in dense)  # those that read it
        reads_text = query.reads_as_text
        language = (
            self._sparse.query_language(text)
            if reads_text and (plan.routing or mode != "dense")
            else None
        )
        used = fields
        stage_scores = dict(dense)
        if plan.routing and mode != "sparse" and reads_text:
            used = self._covering(fields, language)
            if not used and mode == "dense":
                used = fields  # dense search must use some model: all of them
            for model_id in fields:
                if model_id not in used:
                    stage_scores.pop(f"dense:{model_id}", None)
        if mode in ("sparse", "hybrid") and reads_text:
            cache = self._stage_cache
            key = ("sparse", text, language, plan.depth, plan.filter_key)
            sparse = None if cache is None else cache.get(key)
            if sparse is None:
                sparse = self._sparse.search(text, plan.depth, plan.allowed, language, plan.filter)
                if cache is not None:
                    cache[key] = sparse
            stage_scores = {"sparse": sparse, **stage_scores}
        return stage_scores, used

    def _vector_fields(self, embedders: Sequence[str] | None) -> tuple[str, ...]:
        if embedders is None:
            return self._source.settings.embedders
        unknown = [e for e in embedders if e not in self._source.settings.embedders]
        if unknown or not embedders:
            names = ", ".join(self._source.settings.embedders)
            raise InputError(
                f"embedders must name this collection's embedders "
                f"({names}); got {', '.join(unknown) or 'none'}",
                field="embedders",
            )
        return tuple(embedders)

    def _covering(self, fields: tuple[str, ...], language: str | None) -> tuple[str, ...]:
        """The fields whose model was trained on ``language`` (none: hybrid search then
        relies on BM25 alone, which needs no training in the language)."""
        chosen = []
        for model_id in fields:
            declared = self._source.embedder(model_id).languages
            if declared is None or language in declared:
                chosen.append(model_id)
        return tuple(chosen)

    def _filter(self, conditions: Mapping[str, Any]) -> set[str]:
        documents = self._source.state().documents
        return {d for d, document in documents.items() if self._passes(document, conditions)}

    @staticmethod
    def _passes(document: StoredDocument, conditions: Mapping[str, Any] | None) -> bool:
        if not conditions:
            return True
        return all(matches(document.metadata.get(key), c) for key, c in conditions.items())
