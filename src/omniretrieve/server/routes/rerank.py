"""POST /v1/rerank (Jina, with Cohere v1's fields) and POST /v2/rerank (Cohere v2)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Request

from omniretrieve.inputs import parse_input, parse_inputs
from omniretrieve.models.base import ScoreOutput
from omniretrieve.reranker import (
    RerankResponse,
    build_rerank_response,
    document_json,
    instruction_argument,
)
from omniretrieve.server import examples
from omniretrieve.server.errors import ERROR_RESPONSES
from omniretrieve.server.images import validate_images, validate_text_lengths
from omniretrieve.server.ocr_fallback import read_images_as_text
from omniretrieve.server.pool import RerankJob
from omniretrieve.server.routes import (
    app_config,
    app_metrics,
    ready_pool,
    results_unless_disconnected,
    submit_all,
)
from omniretrieve.server.schemas import CohereRerankRequest, RerankRequest

router = APIRouter()


async def run_rerank(request: Request, body: RerankRequest | CohereRerankRequest) -> RerankResponse:
    """Either API's request (they share every field this reads)."""
    config = app_config(request)
    loaded = ready_pool(request).reranker(body.model)
    model = loaded.model
    given = instruction_argument(model, body.instruction).get("instruction")
    query = parse_input(body.query, field="query")
    documents = parse_inputs(
        body.documents, field="documents", max_items=config.limits.max_documents
    )
    named = [("query", query)] + [(f"documents[{i}]", d) for i, d in enumerate(documents)]
    validate_text_lengths(named, limits=config.limits)
    reader = request.app.state.ocr_reader
    validate_images(
        named,
        limits=config.limits,
        model_id=model.model_id,
        modalities=model.modalities,
        ocr_available=reader is not None,
        policy=config.fetch_policy(),
    )
    originals = documents  # as sent (URLs kept) for return_documents
    fetched = await request.app.state.image_fetcher.prefetch(named)
    named = [(field, item) for (field, _), item in zip(named, fetched, strict=True)]
    query, documents = fetched[0], fetched[1:]
    read_by_ocr: list[int] = []
    unreadable: set[int] = set()  # positions as in ``named``: documents[i] is i + 1
    if "image" not in model.modalities and reader is not None:
        converted, read_by_ocr = await read_images_as_text(
            named, reader=reader, limits=config.limits, unreadable=unreadable
        )
        query, documents = converted[0], converted[1:]
    unread = sorted(p - 1 for p in unreadable)
    readable = [d for i, d in enumerate(documents) if i + 1 not in unreadable]
    if readable:
        job = RerankJob(query, readable, given)  # one job: a request's documents together
        futures = submit_all(loaded.queue, [(job, len(readable))], key="rerank")
        (output,) = await results_unless_disconnected(request, loaded.queue, futures)
    else:
        none = np.zeros(0, dtype=np.float32)
        output = ScoreOutput(scores=none, truncated=[], total_tokens=0, raw_scores=none)
    app_metrics(request).tokens.labels(model.model_id).inc(output.total_tokens)
    response = build_rerank_response(
        model.model_id,
        output,
        originals,
        top_n=body.top_n,
        return_documents=body.return_documents,
        unread=unread,
        raw_scores=body.raw_scores,
    )
    return replace(response, ocr_positions=read_by_ocr)


def result_rows(response: RerankResponse) -> list[dict[str, Any]]:
    ocr = set(response.ocr_positions)
    return [
        {
            "index": r.index,
            "relevance_score": r.relevance_score,
            **({"document": document_json(r.document)} if r.document is not None else {}),
            **({"ocr": True} if r.index + 1 in ocr else {}),
            **({"unread": True} if r.unread else {}),
            **({"raw_score": r.raw_score} if r.raw_score is not None else {}),
        }
        for r in response.results
    ]


def usage_of(response: RerankResponse) -> dict[str, Any]:
    usage: dict[str, Any] = {"total_tokens": response.total_tokens}
    ocr = response.ocr_positions
    if ocr:
        usage["ocr_images"] = len(ocr)
        usage["ocr_query"] = 0 in ocr
    return usage


@router.post("/v1/rerank", tags=["rerank"], responses=ERROR_RESPONSES)
async def rerank(
    body: Annotated[RerankRequest, Body(openapi_examples=examples.RERANK)], request: Request
) -> dict[str, Any]:
    """Jina's rerank; the response also carries Cohere v1's ``id`` and ``meta``."""
    response = await run_rerank(request, body)
    return {
        "id": str(uuid.uuid4()),
        "model": response.model,
        "usage": usage_of(response),
        "results": result_rows(response),
        "meta": {"billed_units": {"search_units": 1}},
        **({"warnings": response.warnings} if response.warnings else {}),
    }


@router.post("/v2/rerank", tags=["rerank"], responses=ERROR_RESPONSES)
async def rerank_cohere(
    body: Annotated[CohereRerankRequest, Body(openapi_examples=examples.COHERE_RERANK)],
    request: Request,
) -> dict[str, Any]:
    """Cohere's v2 rerank."""
    response = await run_rerank(request, body)
    return {
        "id": str(uuid.uuid4()),
        "results": result_rows(response),
        "meta": {
            "api_version": {"version": "2"},
            "billed_units": {"search_units": 1, "input_tokens": response.total_tokens},
        },
        **({"warnings": response.warnings} if response.warnings else {}),
    }
