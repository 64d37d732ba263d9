"""FastAPI app factory: every piece of state lives on the app, none at module level."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from fastapi_offline import FastAPIOffline

from omniretrieve import __version__
from omniretrieve.errors import OmniRetrieveError
from omniretrieve.server.body_checks import JsonBodyCheckMiddleware
from omniretrieve.server.collections import CollectionManager
from omniretrieve.server.config import ServerConfig
from omniretrieve.server.errors import install_error_handlers
from omniretrieve.server.image_fetch import ImageFetcher
from omniretrieve.server.metrics import ServerMetrics
from omniretrieve.server.ocr_fallback import create_reader
from omniretrieve.server.page import DOCS_ASSETS, install_search_page
from omniretrieve.server.pool import ModelPool
from omniretrieve.server.routes import (
    collections,
    documents,
    embeddings,
    rerank,
    service,
    sparse,
)
from omniretrieve.server.security import (
    ApiKeyMiddleware,
    BodySizeLimitMiddleware,
    SecurityHeadersMiddleware,
)
from omniretrieve.server.thumbnails import PictureCache

log = logging.getLogger("omniretrieve.server")


def create_app(config: ServerConfig | None = None, *, pool: ModelPool | None = None) -> FastAPI:
    """The app for ``config``. It creates, loads and (at shutdown) closes its own model pool,
    unless ``pool`` is given: then the caller owns it (tests, embedding the app elsewhere)."""
    config = config or ServerConfig()
    owns_pool = pool is None
    pool = pool or ModelPool(config, ServerMetrics.create())
    metrics = pool.metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not pool.ready.is_set():
            if config.load_in_background:
                threading.Thread(target=load_quietly, args=(pool,), daemon=True).start()
            else:
                await asyncio.to_thread(pool.load)
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.collections.close)
            app.state.image_fetcher.close()
            if owns_pool:  # a pool handed in belongs to the caller, who closes it
                await asyncio.to_thread(pool.close)

    app = FastAPIOffline(  # Swagger UI and ReDoc from files installed with the package
        title="omniretrieve",
        version=__version__,
        description="Embeddings and rerank, compatible with the Jina, OpenAI and Cohere APIs.",
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
    )
    install_search_page(app)
    app.state.config = config
    app.state.pool = pool
    app.state.metrics = metrics
    app.state.collections = CollectionManager(pool, config.collections_root, config.limits)
    app.state.milvus_uri = config.milvus_uri
    app.state.ocr_reader = create_reader(config.ocr_fallback)
    app.state.pictures = PictureCache()
    app.state.image_fetcher = ImageFetcher(
        config.fetch_policy(), config.limits, config.image_cache_bytes
    )

    # the last added runs first: CORS answers preflights (which carry no API key) and puts
    # its headers on every answer, a 401 or a 413 included
    app.add_middleware(JsonBodyCheckMiddleware)
    app.add_middleware(ApiKeyMiddleware, keys=config.api_keys)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=config.limits.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    if config.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.middleware("http")
    async def record_metrics(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        path = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.requests.labels(path, str(response.status_code)).inc()
        metrics.latency.labels(path).observe(time.perf_counter() - started)
        return response

    install_error_handlers(app)
    for module in (service, embeddings, rerank, collections, documents):
        app.include_router(module.router)
    if pool.serves_output("sparse"):  # TEI's route, for models with a sparse head only
        app.include_router(sparse.router)
    return app


def load_quietly(pool: ModelPool) -> None:
    """Load in the background; failures are kept for /readyz instead of killing the server."""
    try:
        pool.load()
    except OmniRetrieveError:
        pass  # recorded in pool.load_error
    except Exception as exc:  # a bug or an environment problem: report it, keep serving health
        pool.load_error = f"{type(exc).__name__}: {exc}"
        log.exception("model loading failed")
