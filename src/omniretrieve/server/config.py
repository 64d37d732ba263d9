"""Server settings: which models, which limits, which keys. Passed to the app factory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from omniretrieve.errors import InputError
from omniretrieve.models.registry import DEFAULT_EMBEDDER, DEFAULT_RERANKER
from omniretrieve.runtime.fetch import FetchPolicy

API_KEYS_ENV = "OMNIRETRIEVE_API_KEYS"


@dataclass(frozen=True)
class Limits:
    """Per-request limits; each is reported in the error that it triggers."""

    max_body_bytes: int = 32 * 1024 * 1024
    max_inputs: int = 2048
    max_documents: int = 1000
    """Documents per rerank request."""
    max_upsert_documents: int = 1000
    """Documents per collection upsert request."""
    max_tokens_per_request: int = 1_000_000
    max_text_chars: int = 1_000_000
    """Characters per text: an input, a rerank document, a collection document."""
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_pending_items: int = 16_384
    """Inputs + documents waiting per model before new requests get 429."""
    max_fetch_seconds: float = 20.0
    """One image URL's whole fetch (redirects and body); each read also times out at 10 s."""
    max_request_fetch_seconds: float = 30.0
    """All of one request's image URLs, fetched concurrently."""
    max_pending_fetches: int = 64
    """Image URLs being fetched or waiting for a fetch thread before new ones get 429."""


@dataclass(frozen=True)
class ServerConfig:
    models: tuple[str, ...] = (DEFAULT_EMBEDDER, DEFAULT_RERANKER)
    api_keys: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    device: str = "cpu"
    dtype: str = "auto"
    model_dtypes: tuple[tuple[str, str], ...] = ()
    """(model, dtype) pairs overriding ``dtype`` for one model (``--model-dtype``)."""
    batch_wait_ms: float = 5.0
    max_batch_items: int = 64
    ocr_fallback: bool = True
    """Images sent to text-only models are read by OCR (False: such images are a 422)."""
    load_in_background: bool = True
    collections_root: Path | None = None
    """Where the server's collections live (default: the user's data directory)."""
    milvus_uri: str | None = None
    """Milvus for collections created with vector_store=milvus (None: Milvus Lite files)."""
    aliases: tuple[tuple[str, str], ...] = ()
    """(name, model) pairs: ``name`` in a request's ``model`` picks that loaded model
    (``--alias text-embedding-3-small=all-MiniLM-L6-v2``), as served model names do."""
    default_aliases: bool = True
    """Answer the model names clients send by default (``text-embedding-3-small``,
    ``rerank-v3.5``...) with the first served embedder or reranker
    (``--no-default-aliases``: off)."""
    allowed_image_hosts: tuple[str, ...] = ()
    """Host names image URLs may be fetched from although they resolve to non-public
    addresses (``--allow-image-host``); every other host must be public."""
    image_cache_bytes: int = 256 * 1024 * 1024
    """Fetched images kept (by content hash) so a URL sent again is not fetched again."""

    def fetch_policy(self) -> FetchPolicy:
        """The SSRF policy for this server's image URLs."""
        return FetchPolicy(
            max_bytes=self.limits.max_image_bytes,
            allowed_hosts=self.allowed_image_hosts,
            deadline_s=self.limits.max_fetch_seconds,
        )


def parse_pairs(
    values: list[str] | None, option: str = "alias", shape: str = "NAME=MODEL"
) -> tuple[tuple[str, str], ...]:
    """``A=B`` strings (``--alias NAME=MODEL``, ``--model-dtype MODEL=DTYPE``) -> (a, b)
    pairs; a malformed one is an error naming the option and the value."""
    pairs = []
    for value in values or []:
        left, sep, right = value.partition("=")
        if not sep or not left.strip() or not right.strip():
            raise InputError(f"--{option} {value!r}: expected {shape}", field=option)
        pairs.append((left.strip(), right.strip()))
    return tuple(pairs)


def parse_aliases(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    return parse_pairs(values)


def read_api_keys(cli_keys: list[str] | None, key_file: Path | None) -> tuple[str, ...]:
    """Keys from the command line, ``$OMNIRETRIEVE_API_KEYS`` (comma-separated) and a file
    (one per line, ``#`` comments). Empty strings are dropped."""
    keys: list[str] = list(cli_keys or [])
    keys += [k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",")]
    if key_file is not None:
        try:
            lines = key_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"cannot read the API key file {key_file}: {exc.strerror}") from exc
        keys += [line.strip() for line in lines if not line.lstrip().startswith("#")]
    cleaned = [k.strip() for k in keys]
    for number, key in enumerate(cleaned, 1):
        if key and not (key.isascii() and key.isprintable() and " " not in key):
            raise InputError(
                f"API key #{number} has characters an Authorization header cannot carry "
                "exactly (use printable ASCII without spaces)",
                field="api-key",
            )
    return tuple(dict.fromkeys(k for k in cleaned if k))
