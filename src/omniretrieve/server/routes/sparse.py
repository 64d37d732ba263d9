"""POST /embed_sparse: text-embeddings-inference's learned-sparse route, for models with a
sparse head (BGE-M3): per input, its token weights as ``[{"index": token id, "value": w}]``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from omniretrieve.errors import InputError
from omniretrieve.inputs import parse_inputs
from omniretrieve.server import examples
from omniretrieve.server.errors import ERROR_RESPONSES
from omniretrieve.server.images import validate_text_lengths
from omniretrieve.server.pool import LoadedEmbedder, ModelPool
from omniretrieve.server.routes import app_config, ready_pool, results_unless_disconnected
from omniretrieve.server.routes.embeddings import (
    check_token_budget,
    joined,
    refuse_truncated,
    submit_encode_jobs,
)

router = APIRouter()


class EmbedSparseRequest(BaseModel):
    """TEI's request (``truncation_direction`` and ``prompt_name`` are accepted and ignored:
    texts are cut at their end)."""

    model_config = ConfigDict(extra="ignore")
    inputs: str | list[str]
    truncate: StrictBool = Field(
        True, description="False: texts over the model's length are an error"
    )
    model: str | None = Field(
        None, description="A served model with a sparse head (default: the first one served)"
    )


def sparse_model(pool: ModelPool, requested: str | None) -> LoadedEmbedder:
    if requested is not None:
        return pool.embedder(requested)
    for loaded in pool.embedders.values():
        if "sparse" in loaded.model.outputs:
            return loaded
    raise InputError(
        "no served model returns sparse outputs: serve a BGE-M3 checkpoint (--model DIR)",
        field="model",
    )


@router.post("/embed_sparse", tags=["embeddings"], responses=ERROR_RESPONSES)
async def embed_sparse(
    body: Annotated[EmbedSparseRequest, Body(openapi_examples=examples.EMBED_SPARSE)],
    request: Request,
) -> list[list[dict[str, Any]]]:
    """Served only when a loaded model has a sparse head (BGE-M3)."""
    config = app_config(request)
    loaded = sparse_model(ready_pool(request), body.model)
    if "sparse" not in loaded.model.outputs:
        raise InputError(
            f"{loaded.model.model_id} ({loaded.model.family} family) returns no sparse output",
            field="model",
        )
    raw = body.inputs if isinstance(body.inputs, list) else [body.inputs]
    with loaded.queue.expecting():
        inputs = parse_inputs(raw, field="inputs", max_items=config.limits.max_inputs)
        named = [(f"inputs[{i}]", item) for i, item in enumerate(inputs)]
        validate_text_lengths(named, limits=config.limits)
        await check_token_budget(loaded.model, inputs, config.limits.max_tokens_per_request)
        futures = submit_encode_jobs(request, loaded, inputs, None, None, frozenset({"sparse"}))
    output = joined(await results_unless_disconnected(request, loaded.queue, futures))
    if not body.truncate:
        refuse_truncated(output.truncated, loaded.model.max_length, "inputs")
    assert output.sparse is not None
    return [
        [
            {"index": int(i), "value": float(v)}
            for i, v in zip(item.indices, item.values, strict=True)
        ]
        for item in output.sparse
    ]
