"""Refuse JSON bodies holding values nothing downstream can carry: lone UTF-16 surrogates
(``"\\ud800"``, ``"\\udc00"``: not valid Unicode, fatal to tokenizers and to every JSON or file
writer) and ``NaN`` / ``Infinity`` (not JSON: Python's parser accepts them, no client can read
them back).

Such a body gets a 422 naming the field (``documents[0].metadata.k``) on every endpoint, before
any route sees it. The check reads the body as the routes' JSON parser will: decoded in the
encoding JSON's own detection finds (UTF-8, UTF-16 or UTF-32, with or without a byte-order
mark), surrogates kept. Only a body whose decoded text could hold such a value (a surrogate,
a ``\\uD800``..``\\uDFFF`` escape, one of the two bare words) is parsed and its values walked;
the rest pass untouched.
"""

from __future__ import annotations

import json
import re
from typing import Any

from omniretrieve.checks import check_json_value
from omniretrieve.errors import InputError
from omniretrieve.server.errors import error_response
from omniretrieve.server.security import ASGIApp, Message, Receive, Scope, Send

SUSPECT = re.compile(r"[\ud800-\udfff]|\\u[dD][89a-fA-F][0-9a-fA-F]{2}|NaN|Infinity")
"""What a decoded body must contain to possibly hold a lone surrogate or a non-finite number
(a false alarm, such as a valid surrogate pair or the word NaN inside a string, costs a
parse)."""


def decoded_body(body: bytes) -> str | None:
    """``body`` as the text :func:`json.loads` reads from it (None: not text in any encoding
    JSON allows; the route's own parsing reports that)."""
    try:
        return body.decode(json.detect_encoding(body), "surrogatepass")
    except (UnicodeDecodeError, LookupError):
        return None


def unreadable_value(value: Any) -> InputError | None:
    """The first lone surrogate or non-finite number in a parsed body, as an error naming it
    (``documents[0].metadata.k``); the body may nest to any depth here (document metadata has
    its own limit, checked where documents are parsed)."""
    try:
        check_json_value(value, "", max_depth=None)
    except InputError as problem:
        return problem
    return None


class JsonBodyCheckMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("POST", "PUT", "PATCH")
            or _content_type(scope).startswith(b"multipart/")  # files: not JSON
        ):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        text = decoded_body(body)
        if text is not None and SUSPECT.search(text):
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                parsed = None  # not JSON: the route's own parsing reports it
            problem = unreadable_value(parsed) if parsed is not None else None
            if problem is not None:
                await error_response(problem)(scope, receive, send)
                return
        replay = iter(messages)

        async def replaying_receive() -> Message:
            queued = next(replay, None)
            return queued if queued is not None else await receive()

        await self.app(scope, replaying_receive, send)


def _content_type(scope: Scope) -> bytes:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-type":
            return bytes(value).lower()
    return b""
