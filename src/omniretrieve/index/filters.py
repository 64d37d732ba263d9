"""A search's metadata filter: ``{key: value}`` or ``{key: {"in": [values]}}``, every condition
met by a document's metadata."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omniretrieve.errors import InputError
from omniretrieve.index.store import StoredDocument


def matches(value: Any, condition: Any) -> bool:
    if isinstance(condition, Mapping):
        if set(condition) != {"in"} or not isinstance(condition["in"], list):
            raise InputError('a filter condition is a value or {"in": [values]}', field="filter")
        return value in condition["in"]
    return value == condition


def passes(document: StoredDocument, conditions: Mapping[str, Any] | None) -> bool:
    """Whether ``document`` meets every condition (no conditions: it does)."""
    if not conditions:
        return True
    return all(matches(document.metadata.get(key), c) for key, c in conditions.items())


def allowed_ids(documents: Mapping[str, StoredDocument], conditions: Mapping[str, Any]) -> set[str]:
    """The ids of the documents that meet ``conditions``."""
    return {d for d, document in documents.items() if passes(document, conditions)}
