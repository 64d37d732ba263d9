"""HTTP routes, one module per API area; each reads the app's state from the request."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Any, TypeVar

from fastapi import Request

from omniretrieve.errors import OmniRetrieveError
from omniretrieve.runtime.queue import BatchingQueue
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


R = TypeVar("R")


class ClientDisconnectedError(OmniRetrieveError):
    """The client went away before its answer was ready (nginx's 499; nobody reads it)."""

    status_code = 499
    error_type = "client_disconnected"


async def result_unless_disconnected(
    request: Request, queue: BatchingQueue[Any, R], future: Future[R]
) -> R:
    """The queued job's result; if the client disconnects first, its job is taken out of the
    queue (never run) and :class:`ClientDisconnectedError` ends the request."""
    result = asyncio.wrap_future(future)
    disconnected = asyncio.ensure_future(_disconnect(request))
    try:
        await asyncio.wait({result, disconnected}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        disconnected.cancel()
    if result.done():
        return result.result()
    queue.cancel(future)
    result.cancel()
    raise ClientDisconnectedError("the client disconnected; its queued work was dropped")


async def _disconnect(request: Request) -> None:
    """Returns when the client disconnects (the body was read already: the next message
    the server sends is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
