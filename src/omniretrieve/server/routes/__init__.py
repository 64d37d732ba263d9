"""HTTP routes, one module per API area; each reads the app's state from the request."""

from __future__ import annotations

from fastapi import Request

from omniretrieve.server.config import ServerConfig
from omniretrieve.server.errors import NotReadyError
from omniretrieve.server.metrics import ServerMetrics
from omniretrieve.server.pool import ModelPool


def ready_pool(request: Request) -> ModelPool:
    """The app's model pool, or a 503 while its models are still loading."""
    pool: ModelPool = request.app.state.pool
    if not pool.ready.is_set():
        reason = f": {pool.load_error}" if pool.load_error else ""
        raise NotReadyError(f"models are still loading{reason}")
    return pool


def app_config(request: Request) -> ServerConfig:
    return request.app.state.config


def app_metrics(request: Request) -> ServerMetrics:
    return request.app.state.metrics
