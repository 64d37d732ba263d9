"""What every command shares: one-line errors and exit codes, input readers, JSON output."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from omniretrieve.checks import decode_utf8
from omniretrieve.errors import InputError, OmniRetrieveError

F = TypeVar("F", bound=Callable[..., Any])

DTYPE_HELP = (
    "Precision of the models: auto (bfloat16 for sentence encoders on CPUs with native "
    "bf16, else float32; float16 on GPU), float32, bfloat16, float16 or int8 (onnxruntime, "
    "sentence encoders)."
)


def dtype_option() -> Any:
    """``--dtype``, the same in every command that loads models."""
    return typer.Option("auto", "--dtype", help=DTYPE_HELP)


def server_option(does: str) -> Any:
    """``--server URL`` (or ``$OMNIRETRIEVE_SERVER``): what the command ``does`` there."""
    from omniretrieve.cli.remote import SERVER_ENV

    return typer.Option(None, "--server", envvar=SERVER_ENV, help=f"{does} (or set ${SERVER_ENV}).")


def api_key_option() -> Any:
    """``--api-key`` (or ``$OMNIRETRIEVE_API_KEY``) for ``--server``."""
    from omniretrieve.cli.remote import API_KEY_ENV

    return typer.Option(
        None, "--api-key", envvar=API_KEY_ENV, help=f"The server's API key (or ${API_KEY_ENV})."
    )


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def handle_errors(command: F) -> F:
    """Turn library errors into one line on stderr and an exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as exc:
            _fail(exc.message, 2)
        except OmniRetrieveError as exc:
            _fail(exc.message, 1)
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]


# -- reading inputs -----------------------------------------------------------------------
def read_text_file(path: str) -> str:
    """A whole file (or stdin for ``-``) as UTF-8, with a clear error otherwise."""
    if path == "-":
        data = sys.stdin.buffer.read()
        label = "standard input"
    else:
        target = Path(path)
        if not target.is_file():
            raise InputError(f"{path}: no such file", field="file")
        data = target.read_bytes()
        label = path
    return decode_utf8(data, label)


def read_items(path: str) -> list[Any]:
    """Items of a file: JSON lines (strings or {"text"|"image"} objects) for ``.jsonl``,
    otherwise one text per non-blank line."""
    content = read_text_file(path)
    if path.endswith(".jsonl"):
        items = []
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc})", field="file") from exc
        return items
    return [line for line in content.splitlines() if line.strip()]


def gather_inputs(arguments: list[str] | None, file: str | None) -> list[Any]:
    items: list[Any] = list(arguments or [])
    if file is not None:
        items.extend(read_items(file))
    elif not items and not sys.stdin.isatty():
        items.extend(read_items("-"))
    if not items:
        raise InputError("no input: pass texts as arguments, --file PATH, or pipe them on stdin")
    return items


def write_json(payload: dict[str, Any], rows_key: str, jsonl: bool) -> None:
    if jsonl:
        for row in payload[rows_key]:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


def note_truncation(flags: list[bool], limit: int | None) -> None:
    count = sum(flags)
    if count:
        where = f" to {limit} tokens" if limit else ""
        typer.echo(f"note: {count} input(s) were truncated{where} (see 'truncated')", err=True)


def parse_filters(values: list[str] | None) -> dict[str, Any] | None:
    """``key=value`` pairs. A value that starts like JSON (``[``, ``{``, ``"``) must be valid
    JSON (a list means "any of"); a number, true, false or null is that JSON value; anything
    else is the text as written."""
    if not values:
        return None
    conditions: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"--filter {item!r} must look like key=value", field="filter")
        try:
            value = json.loads(raw)
        except ValueError as exc:
            if raw.lstrip()[:1] in ("[", "{", '"'):
                raise InputError(
                    f"--filter {item!r}: the value is not valid JSON ({exc}); e.g. "
                    f'{key}=\'["a", "b"]\' for any of a list',
                    field="filter",
                ) from exc
            value = raw
        conditions[key] = {"in": value} if isinstance(value, list) else value
    return conditions
