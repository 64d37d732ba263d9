"""serve: the HTTP API."""

from __future__ import annotations

from pathlib import Path

import typer

from omniretrieve import __version__
from omniretrieve.cli.app import app
from omniretrieve.cli.common import dtype_option, handle_errors
from omniretrieve.cli.serve_banner import local_url, start_announcer, starting_lines
from omniretrieve.errors import InputError


@app.command()
@handle_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind; 0.0.0.0 exposes the server."),
    port: int = typer.Option(8000, help="TCP port."),
    model: list[str] = typer.Option(
        None, "--model", "-m", help="Model id or directory to load (repeat for several)."
    ),
    no_bundled: bool = typer.Option(
        False, "--no-bundled", help="Do not load the bundled models beside --model ones."
    ),
    api_key: list[str] = typer.Option(
        None, "--api-key", help="Accepted API key (visible in ps: prefer the env var or a file)."
    ),
    api_key_file: Path = typer.Option(None, "--api-key-file", help="File of API keys, one a line."),
    cors_origin: list[str] = typer.Option(None, "--cors-origin", help="Allowed CORS origin."),
    device: str = typer.Option("cpu"),
    dtype: str = dtype_option(),
    model_dtype: list[str] = typer.Option(
        None, "--model-dtype", help="MODEL=DTYPE: this model's precision (repeatable)."
    ),
    max_body_bytes: int = typer.Option(32 * 1024 * 1024, help="Largest request body."),
    max_inputs: int = typer.Option(2048, help="Inputs per embeddings request."),
    max_documents: int = typer.Option(1000, help="Documents per rerank request."),
    max_upsert_documents: int = typer.Option(1000, help="Documents per collection upsert."),
    max_text_chars: int = typer.Option(
        1_000_000, help="Characters per text (inputs, rerank and collection documents)."
    ),
    max_tokens: int = typer.Option(1_000_000, help="Tokens per embeddings request."),
    max_image_bytes: int = typer.Option(20 * 1024 * 1024, help="Bytes per image."),
    max_image_pixels: int = typer.Option(40_000_000, help="Pixels per image."),
    max_pending: int = typer.Option(16_384, help="Queued inputs per model before 429."),
    batch_wait_ms: float = typer.Option(5.0, help="How long a batch waits for more requests."),
    max_batch_items: int = typer.Option(64, help="Inputs merged into one model call at most."),
    no_ocr_fallback: bool = typer.Option(
        False, "--no-ocr-fallback", help="Images sent to text models are a 422 (no OCR)."
    ),
    collections_root: Path = typer.Option(
        None, "--collections-root", help="Where served collections live (default: data dir)."
    ),
    milvus_uri: str = typer.Option(
        None, "--milvus-uri", help="Milvus for vector_store=milvus collections (default: Lite)."
    ),
    no_default_aliases: bool = typer.Option(
        False,
        "--no-default-aliases",
        help="Do not answer clients' default model names (text-embedding-3-small, "
        "rerank-v3.5, jina-reranker-v2-base-multilingual...) with the served models.",
    ),
    alias: list[str] = typer.Option(
        None,
        "--alias",
        help="NAME=MODEL (repeatable): requests naming NAME get that loaded model, e.g. "
        "text-embedding-3-small=all-MiniLM-L6-v2 for clients' default model names.",
    ),
    allow_image_host: list[str] = typer.Option(
        None,
        "--allow-image-host",
        help="A host image URLs may come from although it is internal (repeatable); every "
        "other host must resolve to public addresses.",
    ),
    max_fetch_seconds: float = typer.Option(
        20.0, help="Seconds one image URL's whole fetch may take (however slowly it is sent)."
    ),
    max_request_fetch_seconds: float = typer.Option(
        30.0, help="Seconds all of one request's image URLs may take together (then: 422)."
    ),
    max_pending_fetches: int = typer.Option(
        64, help="Image URLs being fetched or waiting at once before 429."
    ),
    image_cache_mb: int = typer.Option(
        256, help="Megabytes of fetched images kept, so a URL sent again is not re-fetched."
    ),
    header_timeout: float = typer.Option(
        10.0, help="Seconds a client has to send a request's headers (then: disconnected)."
    ),
    body_timeout: float = typer.Option(
        30.0, help="Seconds a request body may pause between reads (then: disconnected)."
    ),
    keep_alive: int = typer.Option(5, help="Seconds an idle kept-alive connection stays."),
    log_level: str = typer.Option("info"),
) -> None:
    """Serve /v1/embeddings, /v1/rerank (Jina), /v2/rerank (Cohere) and more over HTTP."""
    import uvicorn

    from omniretrieve.models.base import check_dtype
    from omniretrieve.models.registry import (
        DEFAULT_EMBEDDER,
        DEFAULT_RERANKER,
        E5_EMBEDDER,
        MULTILINGUAL_EMBEDDER,
    )
    from omniretrieve.server.app import create_app
    from omniretrieve.server.config import (
        API_KEYS_ENV,
        Limits,
        ServerConfig,
        parse_aliases,
        parse_pairs,
        read_api_keys,
    )

    if api_key:
        typer.echo(
            f"warning: --api-key shows in the process list; prefer ${API_KEYS_ENV} or "
            "--api-key-file",
            err=True,
        )
    models = list(model or [])
    if not no_bundled:
        bundled = (DEFAULT_EMBEDDER, MULTILINGUAL_EMBEDDER, E5_EMBEDDER, DEFAULT_RERANKER)
        models += [m for m in bundled if m not in models]
    if not models:
        raise InputError("no model to serve: pass --model or drop --no-bundled")
    per_model_dtypes = parse_pairs(model_dtype, "model-dtype", "MODEL=DTYPE")
    for name, value in per_model_dtypes:
        check_dtype(value)
        if name not in models:
            raise InputError(
                f"--model-dtype {name}={value}: {name!r} is not served (--model)",
                field="model-dtype",
            )
    config = ServerConfig(
        models=tuple(models),
        api_keys=read_api_keys(api_key, api_key_file),
        cors_origins=tuple(cors_origin or ()),
        limits=Limits(
            max_body_bytes=max_body_bytes,
            max_inputs=max_inputs,
            max_documents=max_documents,
            max_upsert_documents=max_upsert_documents,
            max_tokens_per_request=max_tokens,
            max_text_chars=max_text_chars,
            max_image_bytes=max_image_bytes,
            max_image_pixels=max_image_pixels,
            max_pending_items=max_pending,
            max_fetch_seconds=max_fetch_seconds,
            max_request_fetch_seconds=max_request_fetch_seconds,
            max_pending_fetches=max_pending_fetches,
        ),
        device=device,
        dtype=check_dtype(dtype),
        model_dtypes=per_model_dtypes,
        batch_wait_ms=batch_wait_ms,
        max_batch_items=max_batch_items,
        collections_root=collections_root,
        milvus_uri=milvus_uri,
        ocr_fallback=not no_ocr_fallback,
        aliases=parse_aliases(alias),
        default_aliases=not no_default_aliases,
        allowed_image_hosts=tuple(allow_image_host or ()),
        image_cache_bytes=image_cache_mb * 1024 * 1024,
    )
    import logging

    logging.basicConfig(format="%(levelname)s:     %(message)s", level=log_level.upper())
    keys = f"{len(config.api_keys)} API key(s)" if config.api_keys else "no API key"
    for line in starting_lines(__version__, models, host, port, keys):
        typer.echo(line, err=True)
    import os

    from omniretrieve.index.store import SERVER_URL_ENV
    from omniretrieve.server.connections import timed_protocol

    os.environ[SERVER_URL_ENV] = local_url(host, port)  # named in the locks it holds
    served = create_app(config)
    start_announcer(served.state.pool, host, port)
    uvicorn.run(
        served,
        host=host,
        port=port,
        log_level=log_level,
        http=timed_protocol(header_timeout, body_timeout),
        timeout_keep_alive=keep_alive,
        timeout_graceful_shutdown=30,
    )
