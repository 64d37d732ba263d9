"""Image files as pages: PNG, JPEG, WebP and TIFF (every frame of a multi-page TIFF), within
byte, pixel and frame limits checked before pixels are decoded."""

from __future__ import annotations

import io

from omniretrieve.errors import InputError, LimitExceededError
from omniretrieve.inputs import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS, open_image

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"})
DEFAULT_MAX_FRAMES = 100


def image_pages(
    data: bytes,
    *,
    field: str = "image",
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> list[bytes]:
    """The pages of an image file as encoded images: the file itself, or each frame of a
    multi-frame TIFF re-encoded as PNG. Every page is checked against the limits."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > max_bytes:
        raise LimitExceededError(
            f"{field} is {len(data)} bytes; the limit is {max_bytes}", field=field
        )
    try:
        with Image.open(io.BytesIO(data)) as probe:
            frames = getattr(probe, "n_frames", 1)
            if frames > max_frames:
                raise LimitExceededError(
                    f"{field} has {frames} frames; the limit is {max_frames} pages per image",
                    field=field,
                )
            if frames == 1:
                open_image(data, field=field, max_bytes=max_bytes, max_pixels=max_pixels)
                return [data]
            pages = []
            for number in range(frames):
                probe.seek(number)
                width, height = probe.size
                if width * height > max_pixels:
                    raise LimitExceededError(
                        f"{field} frame {number + 1} is {width}x{height} pixels; the limit is "
                        f"{max_pixels} pixels",
                        field=field,
                    )
                buffer = io.BytesIO()
                probe.convert("RGB").save(buffer, format="PNG")
                pages.append(buffer.getvalue())
            return pages
    except (LimitExceededError, InputError):
        raise
    except Image.DecompressionBombError as exc:
        raise LimitExceededError(f"{field} is a decompression bomb: {exc}", field=field) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{field} is not a readable image: {exc}", field=field) from exc
