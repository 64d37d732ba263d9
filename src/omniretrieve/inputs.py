"""The inputs a model can take: text, images and mixed (text + image) items.

Everything a caller sends (a string, a ``{"text": ...}`` / ``{"image": ...}`` mapping or one of
the dataclasses below) is parsed into these types in one place, with errors that name the
offending field. Image *decoding* applies pixel and byte limits so that a decompression bomb is
refused before it is expanded in memory.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from omniretrieve.errors import InputError, LimitExceededError

DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000


@dataclass(frozen=True)
class TextInput:
    text: str

    @property
    def modality(self) -> str:
        return "text"


@dataclass(frozen=True)
class ImageInput:
    """An image given as raw bytes, a data URI, raw base64, an http(s) URL or a local path."""

    source: str | bytes

    @property
    def modality(self) -> str:
        return "image"


@dataclass(frozen=True)
class MixedInput:
    """A document holding both text and an image (a captioned figure, a page with its OCR)."""

    text: str
    image: ImageInput

    @property
    def modality(self) -> str:
        return "mixed"


Input = TextInput | ImageInput | MixedInput


def parse_input(value: Any, *, field: str, allow_empty_text: bool = False) -> Input:
    """Turn one caller-supplied item into an :data:`Input`, or raise :class:`InputError`."""
    if isinstance(value, TextInput | ImageInput | MixedInput):
        parsed: Input = value
    elif isinstance(value, str):
        parsed = TextInput(value)
    elif isinstance(value, Mapping):
        parsed = _parse_mapping(value, field=field)
    else:
        raise InputError(
            f"{field} must be a string or an object with 'text' and/or 'image', "
            f"not {type(value).__name__}",
            field=field,
        )
    if isinstance(parsed, TextInput | MixedInput):
        if not isinstance(parsed.text, str):
            raise InputError(f"{field}.text must be a string", field=field)
        if not allow_empty_text and not parsed.text.strip():
            raise InputError(f"{field} is an empty text", field=field)
    return parsed


def _parse_mapping(value: Mapping[str, Any], *, field: str) -> Input:
    unknown = set(value) - {"text", "image"}
    if unknown:
        raise InputError(
            f"{field} has unknown key(s) {sorted(unknown)}; expected 'text' and/or 'image'",
            field=field,
        )
    text, image = value.get("text"), value.get("image")
    if image is not None and not isinstance(image, str):
        raise InputError(f"{field}.image must be a string (URL, data URI or base64)", field=field)
    if text is not None and not isinstance(text, str):
        raise InputError(f"{field}.text must be a string", field=field)
    if text is not None and image:
        return MixedInput(text, ImageInput(image))
    if image:
        return ImageInput(image)
    if text is not None:
        return TextInput(text)
    raise InputError(f"{field} needs a 'text' or an 'image'", field=field)


def parse_inputs(values: Any, *, field: str = "input", max_items: int | None = None) -> list[Input]:
    """Parse a list of items; an empty list and lists over ``max_items`` are errors."""
    if isinstance(values, str | Mapping | TextInput | ImageInput | MixedInput):
        values = [values]
    if not isinstance(values, Iterable):
        raise InputError(f"{field} must be a list", field=field)
    items = list(values)
    if not items:
        raise InputError(f"{field} is an empty list; send at least one item", field=field)
    if max_items is not None and len(items) > max_items:
        raise LimitExceededError(
            f"{field} has {len(items)} items; the limit is {max_items}", field=field
        )
    return [parse_input(item, field=f"{field}[{i}]") for i, item in enumerate(items)]


def texts_of(inputs: Iterable[Input], *, model_id: str, field: str = "input") -> list[str]:
    """The texts of text-only inputs, or an error naming the first non-text input."""
    texts: list[str] = []
    for i, item in enumerate(inputs):
        if not isinstance(item, TextInput):
            raise InputError(
                f"{field}[{i}] is {item.modality}, but model {model_id!r} takes text only",
                field=f"{field}[{i}]",
            )
        texts.append(item.text)
    return texts


def decode_image_bytes(source: str | bytes, *, field: str = "image") -> bytes:
    """Bytes of an image given inline (bytes, data URI or raw base64). URLs are not fetched here."""
    if isinstance(source, bytes):
        return source
    if source.startswith(("http://", "https://", "file:", "ftp:")):
        raise InputError(
            f"{field} is a URL; this entry point takes inline images only (data URI or base64)",
            field=field,
        )
    payload = source
    if source.startswith("data:"):
        header, sep, payload = source.partition(",")
        if not sep or ";base64" not in header:
            raise InputError(f"{field} is a data URI without a base64 payload", field=field)
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{field} is neither a data URI nor valid base64", field=field) from exc


def open_image(
    data: bytes,
    *,
    field: str = "image",
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> Any:
    """Decode image bytes into an RGB ``PIL.Image`` within byte and pixel limits.

    The pixel limit is checked from the header before any pixel is decoded, which is what
    refuses decompression bombs (a tiny PNG that claims 20,000 x 20,000 pixels).
    """
    from PIL import Image, UnidentifiedImageError

    if len(data) > max_bytes:
        raise LimitExceededError(
            f"{field} is {len(data)} bytes; the limit is {max_bytes}", field=field
        )
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            if width * height > max_pixels:
                raise LimitExceededError(
                    f"{field} is {width}x{height} pixels; the limit is {max_pixels} pixels",
                    field=field,
                )
            probe.load()
            return probe.convert("RGB")
    except LimitExceededError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{field} is not a readable image: {exc}", field=field) from exc
    except Image.DecompressionBombError as exc:
        raise LimitExceededError(f"{field} is a decompression bomb: {exc}", field=field) from exc
