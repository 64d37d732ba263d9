"""Refuse JSON bodies holding values nothing downstream can carry: lone UTF-16 surrogates
(``"\\ud800"``: not valid Unicode, fatal to tokenizers and to every JSON or file writer) and
``NaN`` / ``Infinity`` (not JSON: Python's parser accepts them, no client can read them back).

Such a body gets a 422 naming the field (``documents[0].metadata.k``) on every endpoint, before
any route sees it. Only bodies that could hold them are parsed here (a byte scan for ``\\uD8``..
``\\uDF`` escapes and the two bare words); the rest pass untouched.
"""

from __future__ import annotations

import json
import re
from typing import Any

from omniretrieve.checks import check_json_value
from omniretrieve.errors import InputError
from omniretrieve.server.errors import error_response
from omniretrieve.server.security import ASGIApp, Message, Receive, Scope, Send

SUSPECT = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}|NaN|Infinity")


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
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if SUSPECT.search(body):
            try:
                parsed = json.loads(body)
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
