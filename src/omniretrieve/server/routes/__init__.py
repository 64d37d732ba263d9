"""HTTP routes, one module per API area; each reads the app's state from the request."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from concurrent.futures import Future
from typing import Any, TypeVar, cast

from fastapi import Request

from omniretrieve.errors import ClientDisconnectedError as ClientDisconnectedError
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


P = TypeVar("P")
R = TypeVar("R")


def submit_all(
    queue: BatchingQueue[P, R], jobs: list[tuple[P, int]], key: Hashable
) -> list[Future[R]]:
    """Submit ``(payload, cost)`` jobs together: if the queue refuses one, those already
    queued are taken out again (the request is refused whole)."""
    futures: list[Future[R]] = []
    try:
        for payload, cost in jobs:
            futures.append(queue.submit(payload, cost=cost, key=key))
    except Exception:
        for future in futures:
            queue.cancel(future)
        raise
    return futures


async def results_unless_disconnected(
    request: Request, queue: BatchingQueue[Any, R], futures: list[Future[R]]
) -> list[R]:
    """The queued jobs' results; if the client disconnects first, its jobs still waiting are
    taken out of the queue (never run) and :class:`ClientDisconnectedError` ends the
    request. A large request queued as several jobs frees the model within one job."""
    results = asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
    if await _done_before_disconnect(request, results):
        return list(results.result())
    results.add_done_callback(_consume)  # cancelled parts end it: nobody awaits it now
    for future in futures:
        queue.abandon(future)  # queued: never runs; running: stops at its next model batch
    results.cancel()
    raise ClientDisconnectedError("the client disconnected; its queued work was dropped")


async def result_unless_disconnected(request: Request, future: Future[R]) -> R:
    """``future``'s result (work running in another thread), or
    :class:`ClientDisconnectedError` as soon as the client leaves (the work goes on: its
    owner decides whether to stop it)."""
    result: asyncio.Future[Any] = asyncio.wrap_future(future)
    if await _done_before_disconnect(request, result):
        return cast(R, result.result())
    result.add_done_callback(_consume)
    raise ClientDisconnectedError("the client disconnected")


async def _done_before_disconnect(request: Request, result: asyncio.Future[Any]) -> bool:
    """Wait for ``result`` or the client's disconnect, whichever comes first: True when
    ``result`` is done."""
    disconnected = asyncio.ensure_future(_disconnect(request))
    try:
        waiting: set[asyncio.Future[Any]] = {result, disconnected}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        disconnected.cancel()
    return result.done()


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def _disconnect(request: Request) -> None:
    """Returns when the client disconnects (the body was read already: the next message
    the server sends is the disconnect)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
