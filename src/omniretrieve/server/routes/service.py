"""Health, readiness, Prometheus metrics and the model list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from omniretrieve.server.errors import NotReadyError, error_response
from omniretrieve.server.pool import ModelPool
from omniretrieve.server.routes import app_metrics, ready_pool
from omniretrieve.server.schemas import ErrorResponse

router = APIRouter()


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], responses={503: {"model": ErrorResponse}})
async def readyz(request: Request) -> JSONResponse:
    pool: ModelPool = request.app.state.pool
    if not pool.ready.is_set():
        return error_response(NotReadyError(pool.load_error or "models are still loading"))
    return JSONResponse({"status": "ready", "models": pool.model_ids()})


@router.get("/metrics", tags=["health"])
async def prometheus(request: Request) -> Response:
    metrics = app_metrics(request)
    pool: ModelPool = request.app.state.pool
    for model_id, depth in pool.queue_depths().items():
        metrics.queue_depth.labels(model_id).set(depth)
    return Response(metrics.render(), media_type="text/plain; version=0.0.4")


@router.get("/v1/models", tags=["models"])
async def list_models(request: Request) -> dict[str, Any]:
    pool = ready_pool(request)
    common = {"object": "model", "owned_by": "omniretrieve"}
    data = [
        {
            "id": m.model.model_id,
            **common,
            "type": "embedding",
            "family": m.model.family,
            "dimension": m.model.dimension,
            "max_length": m.model.max_length,
            "modalities": sorted(m.model.modalities),
            "dtype": m.model.dtype,
        }
        for m in pool.embedders.values()
    ]
    data += [
        {
            "id": m.model.model_id,
            **common,
            "type": "rerank",
            "family": m.model.family,
            "modalities": sorted(m.model.modalities),
        }
        for m in pool.rerankers.values()
    ]
    by_id = {row["id"]: row for row in data}
    data += [  # aliases (configured, then clients' defaults), listed like their models
        {**by_id[model_id], "id": name, "alias_of": model_id}
        for name, model_id in pool.alias_rows()
        if model_id in by_id
    ]
    return {"object": "list", "data": data}
