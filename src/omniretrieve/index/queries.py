"""What a collection search takes as a query: a text, an image, or both (a composed query:
an image with an instruction or a modification text).

Each stage reads what it can: BM25 and text-only embedders read the text (and sit out for an
image alone), image-capable embedders and rerankers read the whole query. A query's ``key``
identifies it in the first-stage cache (a text query's key is its text). Also here: the check
that some stage can read each query, and query encoding (texts and images apart).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omniretrieve.checks import check_text
from omniretrieve.errors import InputError
from omniretrieve.index.model_protocols import IndexEmbedder
from omniretrieve.inputs import ImageInput, Input, MixedInput, TextInput, parse_input


@dataclass(frozen=True)
class SearchQuery:
    text: str
    """The query's text ("" for an image alone)."""
    image: ImageInput | None = None
    ocr_text: str = ""
    """The text OCR read in the image, for the stages that read text only
    (:func:`omniretrieve.index.query_reading.read_query_image`)."""

    @property
    def readable_text(self) -> str:
        """What a stage that reads text only reads: the text, and the image's OCR text."""
        return f"{self.text}\n{self.ocr_text}".strip() if self.ocr_text.strip() else self.text

    @property
    def reads_as_text(self) -> bool:
        """Whether a stage that reads text only has anything to read."""
        return bool(self.readable_text.strip())

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


def check_readable(
    queries: Sequence[SearchQuery],
    mode: str,
    fields: tuple[str, ...],
    modalities: Callable[[str], frozenset[str]],
) -> None:
    """Every query can be read by some stage of this search: an image alone needs an
    image-capable embedder among ``fields`` in dense or hybrid mode. ``modalities(field)`` is
    asked only when a query has no text (it loads the model)."""
    if all(q.reads_as_text for q in queries):
        return
    readers = [m for m in fields if "image" in modalities(m)]
    for position, query in enumerate(queries):
        if query.reads_as_text or (readers and mode != "sparse"):
            continue
        field_path = "query" if len(queries) == 1 else f"queries[{position}]"
        why = "BM25 reads text" if mode == "sparse" else "these embedders read text only"
        raise InputError(
            f"{field_path} is an image without text, and no stage of this search reads "
            f"images ({why}: {', '.join(fields) or 'none'}); add an image-capable "
            "embedder (CLIP, BGE-VL) to the collection, or send text",
            field=field_path,
        )


def encode_queries(
    embedder: IndexEmbedder,
    queries: Sequence[SearchQuery],
    *,
    show_progress: bool = False,
    instruction: str | None = None,
) -> np.ndarray:
    """Query vectors in the order given: texts through ``encode_texts`` (which eval caches on
    disk), images and composed queries through ``encode``."""
    instructed: dict[str, Any] = {} if instruction is None else {"instruction": instruction}
    vectors = np.empty((len(queries), embedder.dimension), dtype=np.float32)
    texts = [i for i, q in enumerate(queries) if q.image is None]
    others = [i for i, q in enumerate(queries) if q.image is not None]
    if texts:
        vectors[texts] = embedder.encode_texts(
            [queries[i].text for i in texts],
            task="retrieval.query",
            show_progress=show_progress,
            **instructed,
        )
    if others:
        try:
            encoded = embedder.encode(
                [queries[i].as_input() for i in others], task="retrieval.query", **instructed
            )
        except InputError as exc:  # e.g. a dual encoder given text and image in one query
            raise InputError(f"query: {exc.message}", field="query") from exc
        vectors[others] = np.asarray(encoded.embeddings)
    return vectors


def encode_query_outputs(
    embedder: IndexEmbedder,
    queries: Sequence[SearchQuery],
    outputs: Sequence[str],
    instruction: str | None = None,
) -> list[dict[str, Any]]:
    """Per query, each of the model's ``outputs`` from one pass: ``dense`` (its vector),
    ``sparse`` (its :class:`~omniretrieve.multi_vector.SparseEmbedding`), ``multivector``
    (its token vectors)."""
    instructed: dict[str, Any] = {} if instruction is None else {"instruction": instruction}
    try:
        result = embedder.encode(
            [q.as_input() if q.image is not None else q.text for q in queries],
            task="retrieval.query",
            return_sparse="sparse" in outputs,
            return_multivector="multivector" in outputs,
            **instructed,
        )
    except InputError as exc:
        raise InputError(f"query: {exc.message}", field="query") from exc
    encoded: list[dict[str, Any]] = [{} for _ in queries]
    for position, row in enumerate(encoded):
        if "dense" in outputs:
            row["dense"] = np.asarray(result.embeddings[position], dtype=np.float32)
        if result.sparse is not None:
            row["sparse"] = result.sparse[position]
        if result.multivectors is not None:
            row["multivector"] = np.asarray(result.multivectors[position], dtype=np.float32)
    return encoded
