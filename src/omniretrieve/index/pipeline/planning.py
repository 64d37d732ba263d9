"""Planning a search, before any work: every argument checked (a bad one fails the search
before a model runs), the queries parsed, the vector fields in play, the filter, each list's
depth, the rerank (its model, share, candidates and instruction) and the diversity asked for."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from omniretrieve.errors import InputError
from omniretrieve.index.diversity import check_diversity
from omniretrieve.index.filters import allowed_ids
from omniretrieve.index.fusion_policy import FusionPolicy
from omniretrieve.index.pipeline.state import Diversity, RerankChoice, SearchPlan
from omniretrieve.index.queries import check_readable, parse_queries
from omniretrieve.index.search_source import SearchSource
from omniretrieve.index.settings import FIELD_OUTPUTS

MODES: tuple[str, ...] = ("dense", "sparse", "hybrid")
FIRST_STAGE = 100
"""Candidates each first-stage list contributes to hybrid fusion."""


def check_limits(top_k: int, max_chars: int | None) -> None:
    """``top_k`` and ``max_chars`` are positive integers (``max_chars`` may be None)."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InputError("top_k must be a positive integer", field="top_k")
    if max_chars is not None and (
        isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1
    ):
        raise InputError("max_chars must be a positive integer", field="max_chars")


def plan_search(
    source: SearchSource,
    fusion: FusionPolicy,
    queries: Sequence[Any],
    *,
    filters_itself: bool,
    top_k: int = 10,
    mode: str = "hybrid",
    rerank: bool | str = False,
    filter: Mapping[str, Any] | None = None,  # noqa: A002 (the API's field name)
    embedders: Sequence[str] | Literal["auto"] | None = None,
    fusion_weights: Sequence[float] | None = None,
    route_by_language: bool = False,
    instruction: str | Mapping[str, str] | None = None,
    max_chars: int | None = None,
    fusion_method: str | None = None,
    rerank_share: float | None = None,
    snippets: bool = True,
    diversity: float | None = None,
    collapse_duplicates: bool = False,
    candidates: Sequence[Mapping[str, float]] | None = None,
    outputs: Sequence[str] | None = None,
) -> SearchPlan:
    """The plan of a search with these arguments (see :meth:`Searcher.search_many`);
    ``candidates``: the first stage is supplied (one list per query), nothing of the
    collection's own first stage is planned. ``filters_itself``: the vector store applies the
    filter (else the plan lists the ids it admits)."""
    if candidates is not None and len(candidates) != len(queries):
        raise InputError("one candidate list per query", field="candidates")
    check_limits(top_k, max_chars)
    check_diversity(diversity)
    parsed = tuple(parse_queries(queries))
    choice = _rerank_choice(
        source,
        fusion,
        rerank,
        rerank_share,
        top_k,
        diverse=diversity is not None or collapse_duplicates,
        instruction=instruction,
    )
    fields: tuple[str, ...] = ()
    allowed = None
    method = ""
    if candidates is None:
        if mode not in MODES:
            raise InputError(f"mode must be one of {', '.join(MODES)}; got {mode!r}", field="mode")
        fields = _vector_fields(source, None if embedders == "auto" else embedders)
        if mode == "dense" and not fields:
            raise InputError(
                f"collection {source.name!r} holds no vectors (BM25 only): use mode 'sparse'",
                field="mode",
            )
        check_readable(parsed, mode, fields, lambda m: source.embedder(m).modalities)
        outputs = _checked_outputs(fusion, fields, outputs, mode)
        fusion.weights(fields, fusion_weights, fields, outputs)  # checked before any work
        method = fusion.method(fusion_method)
        if filter and not filters_itself:
            allowed = allowed_ids(source.state().documents, filter)
    return SearchPlan(
        queries=parsed,
        mode=mode if candidates is None else None,
        fields=fields,
        routing=route_by_language or embedders == "auto",
        allowed=allowed,
        filter=filter,
        filter_key=json.dumps(filter, sort_keys=True, default=str) if filter else None,
        depth=choice.want if candidates is not None else max(choice.want, FIRST_STAGE),
        instructions={
            m: instruction
            if isinstance(instruction, str) or instruction is None
            else instruction.get(m)
            for m in fields
        },
        top_k=top_k,
        rerank=choice,
        diversity=Diversity(diversity, collapse_duplicates),
        fusion_weights=fusion_weights,
        fusion_method=method,
        snippets=snippets,
        max_chars=max_chars,
        supplied=tuple(candidates) if candidates is not None else None,
        outputs=None if outputs is None else tuple(outputs),
    )


def _rerank_choice(
    source: SearchSource,
    fusion: FusionPolicy,
    rerank: bool | str,
    rerank_share: float | None,
    top_k: int,
    *,
    diverse: bool,
    instruction: str | Mapping[str, str] | None,
) -> RerankChoice:
    """The reranker (the collection's for ``True``), its share, the candidates (the
    ``rerank_candidates`` best when reranking or diversifying, else ``top_k``) and its
    instruction (the search's, or the one a per-model mapping names it by)."""
    settings = source.settings
    model_id = settings.reranker if rerank is True else str(rerank)
    share = fusion.rerank_share(model_id, rerank_share) if rerank else 1.0
    if isinstance(instruction, Mapping):
        instruction = instruction.get(model_id)
    return RerankChoice(
        model_id,
        share,
        max(top_k, settings.rerank_candidates if rerank or diverse else top_k),
        instruction,
    )


def _vector_fields(source: SearchSource, embedders: Sequence[str] | None) -> tuple[str, ...]:
    if embedders is None:
        return source.settings.embedders
    unknown = [e for e in embedders if e not in source.settings.embedders]
    if unknown or not embedders:
        names = ", ".join(source.settings.embedders)
        raise InputError(
            f"embedders must name this collection's embedders "
            f"({names}); got {', '.join(unknown) or 'none'}",
            field="embedders",
        )
    return tuple(embedders)


def _checked_outputs(
    fusion: FusionPolicy, fields: tuple[str, ...], outputs: Sequence[str] | None, mode: str
) -> Sequence[str] | None:
    """``outputs`` (which of the models' lists a search uses: dense, sparse, multivector;
    None: all), checked: known names, and some list left for dense search."""
    if outputs is None:
        return None
    if isinstance(outputs, str) or not all(o in FIELD_OUTPUTS for o in outputs) or not outputs:
        raise InputError(
            f"outputs names some of {', '.join(FIELD_OUTPUTS)}; got {outputs!r}", field="outputs"
        )
    if mode != "sparse" and fields and not fusion.lists(fields, outputs):
        raise InputError(
            f"the models of {', '.join(fields)} give no {' or '.join(outputs)} list "
            f"(they give {', '.join(fusion.lists(fields))})",
            field="outputs",
        )
    return outputs
