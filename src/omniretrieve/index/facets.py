"""The metadata values a collection's searches can filter on: per field with few distinct
plain values (a file's ``suffix``, a page's ``text_source``, a ``lang``), each value with its
document count."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from omniretrieve.index.store import StoredDocument

MAX_VALUES = 50
"""A field with more distinct values (paths, titles, hashes) is not offered as a facet."""
MAX_SCANNED = 50_000
"""Documents read to find them (the first, in id order, in a larger collection)."""
HIDDEN = frozenset({"sha256", "folder", "path", "title", "ocr", "page", "pages"})


def metadata_facets(documents: Iterable[StoredDocument]) -> dict[str, list[list[Any]]]:
    """``{field: [[value, count], ...]}``, most frequent first, for the fields of plain
    values (strings, numbers, booleans) with 2 to :data:`MAX_VALUES` distinct values."""
    counts: dict[str, Counter[Any]] = {}
    wide: set[str] = set()
    for position, document in enumerate(documents):
        if position >= MAX_SCANNED:
            break
        for field, value in document.metadata.items():
            if field in HIDDEN or field in wide or not isinstance(value, str | int | float):
                continue
            seen = counts.setdefault(field, Counter())
            seen[value] += 1
            if len(seen) > MAX_VALUES:
                wide.add(field)
                del counts[field]
    return {
        field: [[value, count] for value, count in seen.most_common()]
        for field, seen in sorted(counts.items())
        if len(seen) >= 2
    }
