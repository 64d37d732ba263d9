"""POST /v1/embeddings: Jina's and OpenAI's shapes."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from omniretrieve.embedder import check_encode_options, requested_outputs, result_of
from omniretrieve.embedding_types import to_json_values
from omniretrieve.errors import InputError, LimitExceededError
from omniretrieve.inputs import Input, parse_inputs
from omniretrieve.models.base import MultiEncodeOutput
from omniretrieve.server import examples
from omniretrieve.server.errors import ERROR_RESPONSES
from omniretrieve.server.images import validate_images, validate_text_lengths
from omniretrieve.server.ocr_fallback import read_images_as_text
from omniretrieve.server.pool import EncodeJob, LoadedEmbedder
from omniretrieve.server.routes import (
    app_config,
    app_metrics,
    ready_pool,
    results_unless_disconnected,
    submit_all,
)
from omniretrieve.server.schemas import EmbeddingsRequest, EmbeddingsResponse

router = APIRouter()

TOKEN_IDS_REFUSED = (
    "input holds token ids; omniretrieve needs text (the ids of another tokenizer cannot be read "
    "back reliably). LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False)"
)


def resolve_embedding_type(body: EmbeddingsRequest) -> str:
    if body.embedding_type and body.encoding_format and body.embedding_type != body.encoding_format:
        raise InputError(
            f"embedding_type {body.embedding_type!r} and encoding_format "
            f"{body.encoding_format!r} disagree; send one",
            field="embedding_type",
        )
    return body.embedding_type or body.encoding_format or "float"


def holds_token_ids(raw: Any) -> bool:
    return isinstance(raw, list) and any(
        isinstance(x, list) or (isinstance(x, int) and not isinstance(x, bool)) for x in raw
    )


async def check_token_budget(model: Any, inputs: list[Input], limit: int) -> None:
    texts = [text for item in inputs if isinstance(text := getattr(item, "text", None), str)]
    if not texts:
        return
    total = sum(await asyncio.to_thread(model.count_tokens, texts))
    if total > limit:
        raise LimitExceededError(
            f"input holds {total} tokens; the limit per request is {limit}", field="input"
        )


def joined(parts: list[MultiEncodeOutput]) -> MultiEncodeOutput:
    """One output from the outputs of consecutive chunks of a request."""
    dense = [p.dense for p in parts if p.dense is not None]
    sparse = [p.sparse for p in parts if p.sparse is not None]
    multi = [p.multivectors for p in parts if p.multivectors is not None]
    return MultiEncodeOutput(
        dense=np.concatenate(dense) if dense else None,
        sparse=[item for part in sparse for item in part] if sparse else None,
        multivectors=[item for part in multi for item in part] if multi else None,
        truncated=[flag for p in parts for flag in p.truncated],
        token_counts=[count for p in parts for count in p.token_counts],
    )


def refuse_truncated(truncated: list[bool], max_length: int, field: str) -> None:
    """A request with ``truncate`` false: an error naming the first input that was cut."""
    if any(truncated):
        first = truncated.index(True)
        raise InputError(
            f"{field}[{first}] is longer than the model's {max_length} tokens and "
            "truncate is false",
            field=f"{field}[{first}]",
        )


def submit_encode_jobs(
    request: Request,
    loaded: LoadedEmbedder,
    inputs: list[Input],
    task: str | None,
    instruction: str | None,
    outputs: frozenset[str],
) -> list[Future[MultiEncodeOutput]]:
    """The inputs queued in model-batch-sized jobs (a client that leaves frees the model
    within one); they merge with other requests' jobs that ask the same."""
    size = max(1, app_config(request).max_batch_items)
    chunks = [inputs[start : start + size] for start in range(0, len(inputs), size)]
    jobs = [(EncodeJob(chunk, task, instruction, outputs), len(chunk)) for chunk in chunks]
    return submit_all(loaded.queue, jobs, key=(task, instruction, tuple(sorted(outputs))))


@router.post(
    "/v1/embeddings",
    tags=["embeddings"],
    response_model=EmbeddingsResponse,
    responses=ERROR_RESPONSES,
)
async def embeddings(
    body: Annotated[EmbeddingsRequest, Body(openapi_examples=examples.EMBEDDINGS)], request: Request
) -> JSONResponse:
    config = app_config(request)
    loaded = ready_pool(request).embedder(body.model)
    model = loaded.model
    embedding_type = resolve_embedding_type(body)
    check_encode_options(body.task, embedding_type, body.normalized)
    outputs = requested_outputs(model, body.return_sparse, body.return_multivector)
    if holds_token_ids(body.input):
        raise InputError(TOKEN_IDS_REFUSED, field="input")
    with loaded.queue.expecting():  # lets a batch in progress wait for this request
        inputs = parse_inputs(
            body.input if isinstance(body.input, list) else [body.input],
            field="input",
            max_items=config.limits.max_inputs,
        )
        named = [(f"input[{i}]", item) for i, item in enumerate(inputs)]
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
        inputs = await request.app.state.image_fetcher.prefetch(named)
        named = [(field, item) for (field, _), item in zip(named, inputs, strict=True)]
        read_by_ocr: list[int] = []
        if "image" not in model.modalities and reader is not None:
            inputs, read_by_ocr = await read_images_as_text(
                named, reader=reader, limits=config.limits
            )
        await check_token_budget(model, inputs, config.limits.max_tokens_per_request)
        futures = submit_encode_jobs(request, loaded, inputs, body.task, body.instruction, outputs)
    multi = joined(await results_unless_disconnected(request, loaded.queue, futures))
    if not body.truncate:
        refuse_truncated(multi.truncated, model.max_length, "input")
    result = result_of(
        model,
        multi,
        dimensions=body.dimensions,
        normalize=body.normalized,
        embedding_type=embedding_type,
    )
    app_metrics(request).tokens.labels(model.model_id).inc(result.total_tokens)
    values = to_json_values(result.embeddings)
    data = [
        {
            "object": "embedding",
            "index": i,
            **({"embedding": values[i]} if result.dense else {}),
            "truncated": truncated,
            **result.extra_outputs_json(i),
        }
        for i, truncated in enumerate(result.truncated)
    ]
    for position in read_by_ocr:
        data[position]["ocr"] = True
    usage: dict[str, Any] = {
        "prompt_tokens": result.total_tokens,
        "total_tokens": result.total_tokens,
    }
    if read_by_ocr:
        usage["ocr_images"] = len(read_by_ocr)
    payload: dict[str, Any] = {"object": "list", "model": model.model_id, "data": data}
    payload["usage"] = usage
    warnings = await asyncio.to_thread(loaded.language_warnings, inputs)
    if warnings:
        payload["warnings"] = warnings
    return JSONResponse(payload)
