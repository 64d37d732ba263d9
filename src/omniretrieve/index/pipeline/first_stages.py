"""A search's first stages: per query, BM25's list and each vector field's list (the queries'
vectors computed in one batch per field and the dense index searched once for all of them), with
per-query routing by language; or the lists a caller supplied. Within
:meth:`FirstStages.reusing`, each query's lists and vectors are computed once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from omniretrieve.fusion import top
from omniretrieve.index.field_outputs import model_outputs
from omniretrieve.index.filters import passes
from omniretrieve.index.milvus_documents import prefetch
from omniretrieve.index.milvus_sparse import MilvusSparse
from omniretrieve.index.pipeline.state import QueryState, SearchPlan
from omniretrieve.index.queries import SearchQuery, encode_queries, encode_query_outputs
from omniretrieve.index.search_source import SearchSource
from omniretrieve.index.settings import field_name, list_name
from omniretrieve.index.sparse_field import SparseField
from omniretrieve.index.vectors import VectorStore
from omniretrieve.runtime.progress import progress_bar


class FirstStages:
    def __init__(
        self, source: SearchSource, vectors: VectorStore, sparse: SparseField | MilvusSparse
    ) -> None:
        self._source = source
        self._vectors = vectors
        self._sparse = sparse
        self._cache: dict[tuple[Any, ...], Any] | None = None

    def invalidate(self) -> None:
        """The documents changed: cached lists are stale."""
        if self._cache is not None:
            self._cache = {}

    @property
    def cached_entries(self) -> int | None:
        """Entries held by :meth:`reusing` (None outside it)."""
        return None if self._cache is None else len(self._cache)

    @contextmanager
    def reusing(self) -> Iterator[None]:
        """Within the block, each query's BM25 list, its list per vector field and its query
        vectors are computed once and reused by later searches with the same filter; the
        memory they take is released when the block ends."""
        previous = self._cache
        if previous is None:
            self._cache = {}
        try:
            yield
        finally:
            self._cache = previous

    def run(self, plan: SearchPlan, show_progress: bool = False) -> list[QueryState]:
        """Per query of ``plan``, its first-stage lists (and its vectors per field)."""
        if plan.supplied is not None:
            return self._supplied(plan)
        queries = plan.queries
        dense_runs, query_vectors = self._dense(plan, show_progress)
        states = []
        with progress_bar(len(queries), "first stage", enabled=show_progress) as advance:
            for query, dense, vectors in zip(queries, dense_runs, query_vectors, strict=True):
                lists, used = self._query_lists(query, dense, plan)
                states.append(QueryState(query, lists, used, vectors))
                advance(1)
        return states

    def _supplied(self, plan: SearchPlan) -> list[QueryState]:
        """The supplied lists, less the ids the collection does not hold or the filter
        excludes, cut to the candidates the next stage takes."""
        assert plan.supplied is not None
        documents = self._source.state().documents
        states = []
        for query, supplied in zip(plan.queries, plan.supplied, strict=True):
            prefetch(documents, supplied)
            kept = {
                doc_id: float(score)
                for doc_id, score in supplied.items()
                if doc_id in documents and passes(documents[doc_id], plan.filter)
            }
            ranked = top(kept, plan.rerank.want)
            states.append(QueryState(query, {"candidates": kept}, ranked=ranked))
        return states

    def _dense(
        self, plan: SearchPlan, show_progress: bool
    ) -> tuple[list[dict[str, dict[str, float]]], list[dict[str, np.ndarray]]]:
        """Per query, each vector field's list and its vectors per field (fields that cannot
        read the query, a text-only model and an image alone, sit out)."""
        queries = plan.queries
        dense_runs: list[dict[str, dict[str, float]]] = [{} for _ in queries]
        query_vectors: list[dict[str, np.ndarray]] = [{} for _ in queries]
        if plan.mode not in ("dense", "hybrid"):
            return dense_runs, query_vectors
        cache = self._cache if self._cache is not None else {}
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
            outputs = tuple(
                o
                for o in model_outputs(self._source.embedder(model_id))
                if plan.outputs is None or o in plan.outputs
            )
            if not outputs:
                continue
            if outputs != ("dense",):
                found = self._token_lists(model_id, outputs, seen, plan, cache)
                for index, (vector, lists) in zip(read, found, strict=True):
                    if vector is not None:
                        query_vectors[index][model_id] = vector
                    dense_runs[index].update(lists)
                continue
            vectors, runs = self._cached_dense(model_id, seen, plan, cache, show_progress)
            for index, vector, run in zip(read, vectors, runs, strict=True):
                query_vectors[index][model_id] = vector
                dense_runs[index][f"dense:{model_id}"] = run
        return dense_runs, query_vectors

    def _token_lists(
        self,
        model_id: str,
        outputs: tuple[str, ...],
        queries: Sequence[SearchQuery],
        plan: SearchPlan,
        cache: dict[tuple[Any, ...], Any],
    ) -> list[tuple[np.ndarray | None, dict[str, dict[str, float]]]]:
        """A model with learned-sparse or multi-vector outputs: per query, its dense vector
        (None without one) and a list per field, from one encoding pass for all outputs."""
        instruction = plan.instructions.get(model_id)
        embedder = self._source.embedder(model_id)
        key = ("outputs", model_id, instruction)
        unencoded = list({q.key: q for q in queries if (*key, q.key) not in cache}.values())
        if unencoded:  # every output the model has: one encoding serves every search
            every = model_outputs(embedder)
            for query, outputs_of in zip(
                unencoded,
                encode_query_outputs(embedder, unencoded, every, instruction),
                strict=True,
            ):
                cache[(*key, query.key)] = outputs_of
        encoded = [cache[(*key, q.key)] for q in queries]
        reduce = embedder.model.multivector_reduce
        found: list[dict[str, dict[str, float]]] = [{} for _ in queries]
        for output in outputs:
            run_key = ("list", list_name(model_id, output), instruction, plan.depth)
            missing = [
                i for i, q in enumerate(queries) if (*run_key, plan.filter_key, q.key) not in cache
            ]
            if missing:
                field = field_name(model_id, output)
                asked = [encoded[i][output] for i in missing]
                if output == "dense":
                    runs = self._vectors.search(
                        field, np.stack(asked), plan.depth, plan.allowed, plan.filter
                    )
                elif output == "sparse":
                    runs = self._vectors.search_sparse(field, asked, plan.depth, plan.allowed)
                else:
                    runs = self._vectors.search_multivector(
                        field, asked, plan.depth, plan.allowed, plan.filter, reduce
                    )
                for i, run in zip(missing, runs, strict=True):
                    cache[(*run_key, plan.filter_key, queries[i].key)] = run
            for i, query in enumerate(queries):
                found[i][list_name(model_id, output)] = cache[
                    (*run_key, plan.filter_key, query.key)
                ]
        return [(e.get("dense"), lists) for e, lists in zip(encoded, found, strict=True)]

    def _cached_dense(
        self,
        model_id: str,
        queries: Sequence[SearchQuery],
        plan: SearchPlan,
        cache: dict[tuple[Any, ...], Any],
        show_progress: bool,
    ) -> tuple[np.ndarray, list[dict[str, float]]]:
        """One field's query vectors and lists, computing only what ``cache`` lacks (the
        stage cache, or a fresh dict outside :meth:`reusing`)."""
        instruction = plan.instructions.get(model_id)
        run_key = ("dense", model_id, instruction, plan.depth, plan.filter_key)
        vector_key = ("vector", model_id, instruction)
        missing = list({q.key: q for q in queries if (*run_key, q.key) not in cache}.values())
        unencoded = [q for q in missing if (*vector_key, q.key) not in cache]
        if unencoded:
            encoded = encode_queries(
                self._source.embedder(model_id),
                unencoded,
                show_progress=show_progress,
                instruction=instruction,
            )
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

    def _query_lists(
        self, query: SearchQuery, dense: dict[str, dict[str, float]], plan: SearchPlan
    ) -> tuple[dict[str, dict[str, float]], tuple[str, ...]]:
        """One query's lists (BM25's first) and the vector fields it uses."""
        mode = plan.mode
        text = query.readable_text
        fields = tuple(m for m in plan.fields if any(n.split(":", 1)[1] == m for n in dense))
        reads_text = query.reads_as_text
        language = (
            self._sparse.query_language(text)
            if reads_text and (plan.routing or mode != "dense")
            else None
        )
        used = fields
        lists = dict(dense)
        if plan.routing and mode != "sparse" and reads_text:
            used = self._covering(fields, language)
            if not used and mode == "dense":
                used = fields  # dense search must use some model: all of them
            for name in dense:
                if name.split(":", 1)[1] not in used:
                    lists.pop(name, None)
        if mode in ("sparse", "hybrid") and reads_text:
            key = ("sparse", text, language, plan.depth, plan.filter_key)
            sparse = None if self._cache is None else self._cache.get(key)
            if sparse is None:
                sparse = self._sparse.search(text, plan.depth, plan.allowed, language, plan.filter)
                if self._cache is not None:
                    self._cache[key] = sparse
            lists = {"sparse": sparse, **lists}
        return lists, used

    def _covering(self, fields: tuple[str, ...], language: str | None) -> tuple[str, ...]:
        """The fields whose model was trained on ``language`` (none: hybrid search then
        relies on BM25 alone, which needs no training in the language)."""
        chosen = []
        for model_id in fields:
            declared = self._source.embedder(model_id).languages
            if declared is None or language in declared:
                chosen.append(model_id)
        return tuple(chosen)
