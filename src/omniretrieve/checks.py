"""Checks that keep what is accepted readable later: texts that encode as UTF-8 (no lone
surrogates), and JSON values that write and read back unchanged (no NaN or Infinity, string
keys, bounded nesting). Each failure names the field it is in."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from omniretrieve.errors import InputError

MAX_TEXT_CHARS = 2_000_000
"""Default cap on one collection document's text (title + text): ~500k tokens, ~2,000
passages; configurable per collection (``max_text_chars``), server and ``index --max-chars``."""
MAX_JSON_DEPTH = 32
"""Nesting allowed in a document's metadata (objects and arrays inside each other)."""


def check_text(value: str, field: str) -> None:
    """``value`` must encode as UTF-8: a lone UTF-16 surrogate (``"\\ud800"`` in JSON) is
    refused, since nothing downstream (tokenizers, files, JSON writers) can carry it."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{field} holds a lone UTF-16 surrogate (U+{ord(value[exc.start]):04X} at "
            f"character {exc.start}), which is not valid Unicode text",
            field=field,
        ) from exc


def check_json_value(value: Any, field: str, *, max_depth: int = MAX_JSON_DEPTH) -> None:
    """``value`` must be JSON that reads back as written: objects with string keys, arrays,
    valid strings, finite numbers, booleans and null, nested at most ``max_depth`` deep."""
    _check(value, field, max_depth, 0)


def _check(value: Any, field: str, max_depth: int, depth: int) -> None:
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        check_text(value, field)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(
                f"{field} is {value!r}: JSON has no NaN or Infinity (send null or a number)",
                field=field,
            )
    elif isinstance(value, Mapping | list | tuple):
        if depth >= max_depth:
            raise InputError(f"{field} is nested deeper than {max_depth} levels", field=field)
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InputError(
                        f"{field} has a key that is not a string: {key!r}", field=field
                    )
                check_text(key, field)
                _check(item, f"{field}.{key}", max_depth, depth + 1)
        else:
            for position, item in enumerate(value):
                _check(item, f"{field}[{position}]", max_depth, depth + 1)
    else:
        raise InputError(
            f"{field} holds a {type(value).__name__}, which is not a JSON value", field=field
        )
