"""Images sent to a text-only model: read with OCR, and the response says so.

When the server has OCR (``ocr_fallback``, on by default, and tesseract installed), an image in
a request for a model that takes text only is replaced by the text OCR finds in it (a mixed
input keeps its text and adds the OCR text); the response marks those inputs (``"ocr": true``)
and counts them in ``usage.ocr_images``. Without OCR such a request is a 422 naming the field.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from omniretrieve.errors import InputError
from omniretrieve.inputs import (
    ImageInput,
    Input,
    MixedInput,
    TextInput,
    decode_image_bytes,
    open_image,
)
from omniretrieve.ocr.engines import OcrUnavailableError
from omniretrieve.ocr.reader import OcrReader
from omniretrieve.server.config import Limits

log = logging.getLogger("omniretrieve.server")


def create_reader(enabled: bool) -> Any:
    """The server's OCR reader, or None when disabled or no engine is installed."""
    if not enabled:
        return None

    try:
        return OcrReader("tesseract")
    except OcrUnavailableError as exc:
        log.warning("OCR fallback off: %s", exc.message)
        return None


async def read_images_as_text(  # after ImageFetcher.prefetch: images are inline
    items: Sequence[tuple[str, Input]],
    *,
    reader: Any,
    limits: Limits,
    unreadable: set[int] | None = None,
) -> tuple[list[Input], list[int]]:
    """``items`` with every image replaced by its OCR text; and the positions replaced. An
    image in which OCR finds no text is an error naming its field, unless its position is
    added to ``unreadable`` (rerank: such documents are flagged, not fatal; the item is kept
    as it was)."""

    def convert(position: int, field: str, item: Input) -> Input:

        image = item.image if isinstance(item, MixedInput) else item
        assert isinstance(image, ImageInput)
        data = decode_image_bytes(image.source, field=field)  # URLs were fetched before
        decoded = open_image(
            data, field=field, max_bytes=limits.max_image_bytes, max_pixels=limits.max_image_pixels
        )
        text = reader.read_one(data, decoded)
        if isinstance(item, MixedInput):
            text = f"{item.text}\n{text}".strip()
        if not text and unreadable is not None and position > 0:
            unreadable.add(position)
            return item
        if not text:
            raise InputError(
                f"{field} is an image in which OCR found no text, and the model reads text only",
                field=field,
            )
        return TextInput(text)

    converted: list[Input] = []
    replaced: list[int] = []
    for position, (field, item) in enumerate(items):
        if isinstance(item, ImageInput | MixedInput):
            converted.append(await asyncio.to_thread(convert, position, field, item))
            if unreadable is None or position not in unreadable:
                replaced.append(position)
        else:
            converted.append(item)
    return converted, replaced
