"""The server's error shape for every failure: ``{"error": {"type", "message", "field",
"param", "code"}, "detail": message}``. ``param`` and ``code`` repeat the field and the type
under the names OpenAI's clients read; the top-level ``detail`` is what Jina's and FastAPI's
clients read."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from omniretrieve.errors import InputError, OmniRetrieveError
from omniretrieve.errors import NotReadyError as NotReadyError
from omniretrieve.runtime.queue import QueueFullError
from omniretrieve.server.schemas import ErrorResponse

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 422, 429, 503)
}
HTTP_ERROR_TYPES = {404: "not_found", 405: "method_not_allowed", 413: "limit_exceeded"}


def error_response(exc: OmniRetrieveError) -> JSONResponse:
    headers = {}
    if isinstance(exc, QueueFullError):
        headers["Retry-After"] = str(exc.retry_after_s)
    elif exc.status_code == 503:
        headers["Retry-After"] = "5"
    return JSONResponse(
        error_body(exc.error_type, exc.message, exc.field), exc.status_code, headers
    )


def error_body(error_type: str, message: str, field: str | None) -> dict[str, Any]:
    return {
        "error": {
            "type": error_type,
            "message": message,
            "field": field,
            "param": field,
            "code": error_type,
        },
        "detail": message,
    }


def field_name(location: tuple[Any, ...]) -> str:
    """pydantic's ('body', 'documents', 3, 'text') -> 'documents[3].text'."""
    name = ""
    for part in location[1:] if location and location[0] == "body" else location:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else str(part)
    return name or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OmniRetrieveError)
    async def library_error(request: Request, exc: OmniRetrieveError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        field = field_name(tuple(first.get("loc", ())))
        message = f"{field}: {first.get('msg', 'invalid value')}"
        if first.get("type") == "json_invalid":
            field, message = "body", "the request body is not valid JSON"
        return error_response(InputError(message, field=field))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = OmniRetrieveError(str(exc.detail))
        error.status_code = exc.status_code
        error.error_type = HTTP_ERROR_TYPES.get(exc.status_code, "invalid_request")
        return error_response(error)
