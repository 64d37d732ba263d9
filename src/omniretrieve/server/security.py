"""API keys (constant-time, never logged), the request body size limit, and the security
headers every response carries."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from omniretrieve.server.errors import error_body
from omniretrieve.server.page import OPEN_PATHS as PAGE_PATHS
from omniretrieve.server.page import OPEN_PREFIXES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/openapi.json", "/docs/oauth2-redirect"})


def key_matches(presented: str, keys: tuple[str, ...]) -> bool:
    """Compare against every key in constant time (no early exit on the first match)."""
    presented_bytes = presented.encode("utf-8")
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(presented_bytes, key.encode("utf-8"))
    return matched


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


async def send_error(
    send: Send, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps(error_body(error_type, message, None)).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class ApiKeyMiddleware:
    """401 unless ``Authorization: Bearer <key>`` matches a configured key (when any is)."""

    def __init__(self, app: ASGIApp, keys: tuple[str, ...]) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not self.keys
            or path in OPEN_PATHS
            or path in PAGE_PATHS
            or path.startswith(OPEN_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope.get("headers", []))
        if token is None or not key_matches(token, self.keys):
            await send_error(
                send,
                401,
                "unauthorized",
                "missing or invalid API key (send Authorization: Bearer <key>)",
                {"www-authenticate": "Bearer"},
            )
            return
        await self.app(scope, receive, send)


class BodySizeLimitMiddleware:
    """413 for bodies over ``max_bytes``, by Content-Length or by counting a streamed body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        received = 0
        too_large = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    raise BodyTooLarge(self.max_bytes)
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)
        if too_large and not started:  # the app answered otherwise: never happens, but be sure
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await send_error(
            send,
            413,
            "limit_exceeded",
            f"request body is larger than the limit of {self.max_bytes} bytes",
        )


class BodyTooLarge(HTTPException):
    """Raised while a body is read: an HTTP exception, so that FastAPI's body parsing lets it
    through as a 413 (it turns other exceptions into 400)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {max_bytes} bytes")


PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""The search page and the API: scripts, styles and requests from this server only; images
from it or inline (the page keeps the API key in localStorage: nothing else may run there)."""
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
"""Swagger UI and ReDoc start from inline scripts and style themselves inline; still nothing
from elsewhere (ReDoc's footer logo from its CDN is not fetched)."""
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeadersMiddleware:
    """``nosniff``, no referrer, no framing and a Content-Security-Policy on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        policy = DOCS_CSP if path in DOCS_PATHS else PAGE_CSP
        extra = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY"),
            (b"content-security-policy", policy.encode()),
        ]

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k, v) for k, v in extra if k not in names),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)
