"""FastAPI app factory: every piece of state lives on the app, none at module level."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from omniretrieve import __version__
from omniretrieve.embedder import check_encode_options, finish_embeddings
from omniretrieve.embedding_types import to_json_values
from omniretrieve.errors import InputError, LimitExceededError, OmniRetrieveError
from omniretrieve.inputs import Input, parse_input, parse_inputs
from omniretrieve.reranker import build_rerank_response, document_json
from omniretrieve.runtime.queue import QueueFullError
from omniretrieve.server.config import ServerConfig
from omniretrieve.server.images import validate_images, validate_text_lengths
from omniretrieve.server.metrics import ServerMetrics
from omniretrieve.server.pool import EncodeJob, ModelPool, RerankJob
from omniretrieve.server.schemas import (
    CohereRerankRequest,
    EmbeddingsRequest,
    EmbeddingsResponse,
    ErrorResponse,
    RerankRequest,
)
from omniretrieve.server.security import ApiKeyMiddleware, BodySizeLimitMiddleware

log = logging.getLogger("omniretrieve.server")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 422, 429, 503)
}


class NotReadyError(OmniRetrieveError):
    status_code = 503
    error_type = "not_ready"


def error_response(exc: OmniRetrieveError) -> JSONResponse:
    headers = {}
    if isinstance(exc, QueueFullError):
        headers["Retry-After"] = str(exc.retry_after_s)
    elif exc.status_code == 503:
        headers["Retry-After"] = "5"
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.status_code, headers=headers)


def field_name(location: tuple[Any, ...]) -> str:
    """('body', 'documents', 3, 'text') -> 'documents[3].text'."""
    name = ""
    for part in location[1:] if location and location[0] == "body" else location:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part in ("str", "list[int]", "list[list[int]]") or "Item" in str(part):
            continue  # the branch of a union, not a field
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def create_app(config: ServerConfig | None = None, *, pool: ModelPool | None = None) -> FastAPI:
    """The app for ``config``. It creates, loads and (at shutdown) closes its own model pool,
    unless ``pool`` is given: then the caller owns it (tests, embedding the app elsewhere)."""
    config = config or ServerConfig()
    owns_pool = pool is None
    pool = pool or ModelPool(config, ServerMetrics.create())
    metrics = pool.metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loader = None
        if not pool.ready.is_set():
            if config.load_in_background:
                loader = threading.Thread(target=_load_quietly, args=(pool,), daemon=True)
                loader.start()
            else:
                await asyncio.to_thread(pool.load)
        try:
            yield
        finally:
            if owns_pool:  # a pool handed in belongs to the caller, who closes it
                await asyncio.to_thread(pool.close)

    app = FastAPI(
        title="omniretrieve",
        version=__version__,
        description="Embeddings and rerank, compatible with the Jina, OpenAI and Cohere APIs.",
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.pool = pool
    app.state.metrics = metrics

    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(ApiKeyMiddleware, keys=config.api_keys)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=config.limits.max_body_bytes)

    @app.middleware("http")
    async def record_metrics(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.requests.labels(path, str(response.status_code)).inc()
        metrics.latency.labels(path).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(OmniRetrieveError)
    async def library_error(request: Request, exc: OmniRetrieveError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        location = tuple(first.get("loc", ()))
        field = field_name(location)
        message = f"{field}: {first.get('msg', 'invalid value')}"
        if first.get("type") == "json_invalid":
            field, message = "body", "the request body is not valid JSON"
        return error_response(InputError(message, field=field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {404: "not_found", 405: "method_not_allowed"}
        error = OmniRetrieveError(str(exc.detail))
        error.status_code = exc.status_code
        error.error_type = kinds.get(exc.status_code, "invalid_request")
        return error_response(error)

    def ready_pool() -> ModelPool:
        if not pool.ready.is_set():
            reason = f": {pool.load_error}" if pool.load_error else ""
            raise NotReadyError(f"models are still loading{reason}")
        return pool

    # -- health ---------------------------------------------------------------------------
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"model": ErrorResponse}})
    async def readyz() -> JSONResponse:
        if not pool.ready.is_set():
            return error_response(NotReadyError(pool.load_error or "models are still loading"))
        return JSONResponse({"status": "ready", "models": pool.model_ids()})

    @app.get("/metrics", tags=["health"])
    async def prometheus() -> Response:
        for model_id, depth in pool.queue_depths().items():
            metrics.queue_depth.labels(model_id).set(depth)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models", tags=["models"])
    async def list_models() -> dict[str, Any]:
        loaded = ready_pool()
        data = [
            {
                "id": m.model.model_id,
                "object": "model",
                "owned_by": "omniretrieve",
                "type": "embedding",
                "family": m.model.family,
                "dimension": m.model.dimension,
                "max_length": m.model.max_length,
                "modalities": sorted(m.model.modalities),
            }
            for m in loaded.embedders.values()
        ]
        data += [
            {
                "id": m.model.model_id,
                "object": "model",
                "owned_by": "omniretrieve",
                "type": "rerank",
                "family": m.model.family,
                "modalities": sorted(m.model.modalities),
            }
            for m in loaded.rerankers.values()
        ]
        return {"object": "list", "data": data}

    # -- embeddings -----------------------------------------------------------------------
    @app.post(
        "/v1/embeddings",
        tags=["embeddings"],
        response_model=EmbeddingsResponse,
        responses=ERROR_RESPONSES,
    )
    async def embeddings(body: EmbeddingsRequest) -> JSONResponse:
        loaded = ready_pool().embedder(body.model)
        model = loaded.model
        embedding_type = resolve_embedding_type(body)
        check_encode_options(body.task, embedding_type, body.normalized)
        raw = body.input
        if isinstance(raw, list) and any(
            isinstance(x, list) or (isinstance(x, int) and not isinstance(x, bool)) for x in raw
        ):
            raise InputError(
                "input holds token ids; omniretrieve needs text (the ids of another tokenizer "
                "cannot be read back reliably). LangChain: OpenAIEmbeddings("
                "check_embedding_ctx_length=False)",
                field="input",
            )
        with loaded.queue.expecting():
            inputs = parse_inputs(
                raw if isinstance(raw, list) else [raw],
                field="input",
                max_items=config.limits.max_inputs,
            )
            named = [(f"input[{i}]", item) for i, item in enumerate(inputs)]
            validate_text_lengths(named, limits=config.limits)
            validate_images(
                named, limits=config.limits, model_id=model.model_id, modalities=model.modalities
            )
            await check_token_budget(model, inputs, config.limits.max_tokens_per_request)
            future = loaded.queue.submit(
                EncodeJob(inputs, body.task, body.instruction),
                cost=len(inputs),
                key=(body.task, body.instruction),
            )
        output = await asyncio.wrap_future(future)
        if not body.truncate and any(output.truncated):
            first = output.truncated.index(True)
            raise InputError(
                f"input[{first}] is longer than the model's {model.max_length} tokens and "
                "truncate is false",
                field=f"input[{first}]",
            )
        result = finish_embeddings(
            model,
            output,
            dimensions=body.dimensions,
            normalize=body.normalized,
            embedding_type=embedding_type,
        )
        metrics.tokens.labels(model.model_id).inc(result.total_tokens)
        values = to_json_values(result.embeddings)
        return JSONResponse(
            {
                "object": "list",
                "model": model.model_id,
                "data": [
                    {
                        "object": "embedding",
                        "index": i,
                        "embedding": values[i],
                        "truncated": result.truncated[i],
                    }
                    for i in range(len(values))
                ],
                "usage": {
                    "prompt_tokens": result.total_tokens,
                    "total_tokens": result.total_tokens,
                },
            }
        )

    # -- rerank ---------------------------------------------------------------------------
    async def run_rerank(
        model_name: str | None,
        query_raw: Any,
        documents_raw: list[Any],
        top_n: int | None,
        return_documents: bool,
    ) -> tuple[Any, list[Input]]:
        loaded = ready_pool().reranker(model_name)
        model = loaded.model
        query = parse_input(query_raw, field="query")
        documents = parse_inputs(
            documents_raw, field="documents", max_items=config.limits.max_documents
        )
        named = [("query", query)] + [(f"documents[{i}]", d) for i, d in enumerate(documents)]
        validate_text_lengths(named, limits=config.limits)
        validate_images(
            named, limits=config.limits, model_id=model.model_id, modalities=model.modalities
        )
        future = loaded.queue.submit(RerankJob(query, documents), cost=len(documents), key=object())
        output = await asyncio.wrap_future(future)
        metrics.tokens.labels(model.model_id).inc(output.total_tokens)
        response = build_rerank_response(
            model.model_id, output, documents, top_n=top_n, return_documents=return_documents
        )
        return response, documents

    @app.post("/v1/rerank", tags=["rerank"], responses=ERROR_RESPONSES)
    async def rerank(body: RerankRequest) -> dict[str, Any]:
        """Jina's rerank (the fields of Cohere's v1 response are included too)."""
        response, _ = await run_rerank(
            body.model, body.query, body.documents, body.top_n, body.return_documents
        )
        results = [
            {
                "index": r.index,
                "relevance_score": r.relevance_score,
                **({"document": document_json(r.document)} if r.document is not None else {}),
            }
            for r in response.results
        ]
        return {
            "id": str(uuid.uuid4()),
            "model": response.model,
            "usage": {"total_tokens": response.total_tokens},
            "results": results,
            "meta": {"billed_units": {"search_units": 1}},
        }

    @app.post("/v2/rerank", tags=["rerank"], responses=ERROR_RESPONSES)
    async def rerank_cohere(body: CohereRerankRequest) -> dict[str, Any]:
        """Cohere's v2 rerank."""
        response, _ = await run_rerank(
            body.model, body.query, body.documents, body.top_n, body.return_documents
        )
        results = [
            {
                "index": r.index,
                "relevance_score": r.relevance_score,
                **({"document": document_json(r.document)} if r.document is not None else {}),
            }
            for r in response.results
        ]
        return {
            "id": str(uuid.uuid4()),
            "results": results,
            "meta": {
                "api_version": {"version": "2"},
                "billed_units": {"search_units": 1, "input_tokens": response.total_tokens},
            },
        }

    return app


def resolve_embedding_type(body: EmbeddingsRequest) -> str:
    if body.embedding_type and body.encoding_format and body.embedding_type != body.encoding_format:
        raise InputError(
            f"embedding_type {body.embedding_type!r} and encoding_format "
            f"{body.encoding_format!r} disagree; send one",
            field="embedding_type",
        )
    return body.embedding_type or body.encoding_format or "float"


async def check_token_budget(model: Any, inputs: list[Input], limit: int) -> None:
    texts = [getattr(item, "text", "") for item in inputs if getattr(item, "text", None)]
    if not texts:
        return
    counts = await asyncio.to_thread(model.count_tokens, texts)
    total = sum(counts)
    if total > limit:
        raise LimitExceededError(
            f"input holds {total} tokens; the limit per request is {limit}", field="input"
        )


def _load_quietly(pool: ModelPool) -> None:
    try:
        pool.load()
    except OmniRetrieveError:
        pass  # recorded in pool.load_error; /readyz reports it
    except Exception as exc:  # a bug or an environment problem: report it, keep serving health
        pool.load_error = f"{type(exc).__name__}: {exc}"
        log.exception("model loading failed")
