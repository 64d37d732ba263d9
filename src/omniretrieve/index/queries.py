"""What a collection search takes as a query: a text, an image, or both (a composed query:
an image with an instruction or a modification text).

Each stage reads what it can: BM25 and text-only embedders read the text (and sit out for an
image alone), image-capable embedders and rerankers read the whole query. A query's ``key``
identifies it in the first-stage cache (a text query's key is its text).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from omniretrieve.checks import check_text
from omniretrieve.errors import InputError
from omniretrieve.inputs import ImageInput, Input, MixedInput, TextInput, parse_input


@dataclass(frozen=True)
class SearchQuery:
    text: str
    """The query's text ("" for an image alone)."""
    image: ImageInput | None = None

    @property
    def key(self) -> str:
        if self.image is None:
            return self.text
        source = self.image.source
        data = source if isinstance(source, bytes) else source.encode("utf-8", "surrogatepass")
        return f"image:{hashlib.sha256(data).hexdigest()}\n{self.text}"

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())

    def as_input(self) -> Input:
        if self.image is None:
            return TextInput(self.text)
        if self.has_text:
            return MixedInput(self.text, self.image)
        return self.image

    def describe(self) -> str:
        """For messages and results: the text, with ``[image]`` when an image is part of it."""
        return f"[image] {self.text}".strip() if self.image is not None else self.text


def parse_query(value: Any, field: str) -> SearchQuery:
    """A string, a ``{"text", "image"}`` mapping, an :data:`Input` or a :class:`SearchQuery`."""
    if isinstance(value, SearchQuery):
        parsed = value
    else:
        item = parse_input(value, field=field, allow_empty_text=True)
        if isinstance(item, TextInput):
            parsed = SearchQuery(item.text)
        elif isinstance(item, MixedInput):
            parsed = SearchQuery(item.text, item.image)
        else:
            parsed = SearchQuery("", item)
    if parsed.image is None and not parsed.has_text:
        raise InputError(f"{field} is an empty text", field=field)
    check_text(parsed.text, field)
    return parsed


def parse_queries(values: Any) -> list[SearchQuery]:
    items = list(values)
    return [
        parse_query(v, "query" if len(items) == 1 else f"queries[{i}]") for i, v in enumerate(items)
    ]
