"""Checks on the images of a request before any model work.

Every image is validated the same way whatever the model: a URL must pass the SSRF policy
(checked, not fetched, here), inline data must decode within the byte and pixel limits. Then a
model that cannot take pixels gets its OCR text (see ``ocr_fallback.py``) or, without OCR, a 422
naming the field: images are never dropped silently.
"""

from __future__ import annotations

from collections.abc import Sequence

from omniretrieve.errors import InputError, LimitExceededError
from omniretrieve.inputs import ImageInput, Input, MixedInput, decode_image_bytes, open_image
from omniretrieve.runtime.fetch import FetchPolicy, check_url
from omniretrieve.server.config import Limits


def image_of(item: Input) -> ImageInput | None:
    if isinstance(item, ImageInput):
        return item
    if isinstance(item, MixedInput):
        return item.image
    return None


def validate_images(
    items: Sequence[tuple[str, Input]],
    *,
    limits: Limits,
    model_id: str,
    modalities: frozenset[str],
    ocr_available: bool = False,
    policy: FetchPolicy | None = None,
) -> None:
    """``items`` are (field name, input); raises on the first bad one. Images for a text-only
    model pass only when the server can read them with OCR. URLs are checked against
    ``policy`` (default: public addresses only)."""
    policy = policy or FetchPolicy(max_bytes=limits.max_image_bytes)
    for field, item in items:
        image = image_of(item)
        if image is None:
            continue
        source = image.source
        if isinstance(source, str) and "://" in source[:16]:
            check_url(source, policy, field=field)
        else:
            data = decode_image_bytes(source, field=field)
            open_image(
                data,
                field=field,
                max_bytes=limits.max_image_bytes,
                max_pixels=limits.max_image_pixels,
            )
        if "image" not in modalities and not ocr_available:
            raise InputError(
                f"{field} is an image, but model {model_id!r} takes text only and this server "
                "has no OCR fallback; load an image-capable model (CLIP, BGE-VL, "
                "jina-reranker-m0), install tesseract-ocr, or send text",
                field=field,
            )


def validate_text_lengths(items: Sequence[tuple[str, Input]], *, limits: Limits) -> None:

    for field, item in items:
        text = getattr(item, "text", None)
        if text is not None and len(text) > limits.max_text_chars:
            raise LimitExceededError(
                f"{field} has {len(text)} characters; the limit is {limits.max_text_chars}",
                field=field,
            )
