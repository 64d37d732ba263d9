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


def decode_utf8(data: bytes, label: str) -> str:
    """``data`` as UTF-8 text, or an error naming ``label`` and the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{label} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it first, e.g. iconv -f latin1 -t utf-8",
            field="file",
        ) from exc


def check_json_value(value: Any, field: str, *, max_depth: int | None = MAX_JSON_DEPTH) -> None:
    """``value`` must be JSON that reads back as written: objects with string keys, arrays,
    valid strings, finite numbers, booleans and null, nested at most ``max_depth`` deep (None:
    any depth). Children are named ``field.key`` and ``field[i]`` (``key`` alone under an
    empty ``field``, which names the whole value ``body``). Walked without recursion, so a
    deeply nested value cannot exhaust the stack."""
    stack: list[tuple[Any, str, int]] = [(value, field, 0)]
    while stack:
        item, where, depth = stack.pop()
        name = where or "body"
        if item is None or isinstance(item, bool | int):
            continue
        if isinstance(item, str):
            check_text(item, name)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InputError(
                    f"{name} is {item!r}: JSON has no NaN or Infinity (send null or a number)",
                    field=name,
                )
        elif isinstance(item, Mapping | list | tuple):
            if max_depth is not None and depth >= max_depth:
                raise InputError(f"{name} is nested deeper than {max_depth} levels", field=name)
            if isinstance(item, Mapping):
                children = []
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise InputError(
                            f"{name} has a key that is not a string: {key!r}", field=name
                        )
                    check_text(key, name)
                    children.append((child, f"{where}.{key}" if where else key, depth + 1))
            else:
                children = [(child, f"{where}[{i}]", depth + 1) for i, child in enumerate(item)]
            stack.extend(reversed(children))  # the first child is checked first
        else:
            raise InputError(
                f"{name} holds a {type(item).__name__}, which is not a JSON value", field=name
            )
