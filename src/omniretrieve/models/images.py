"""Images for image-capable families: any :class:`ImageInput` source to a PIL image.

Inline data (bytes, data URI, base64) is decoded within the byte and pixel limits; an http(s)
URL is fetched under the SSRF policy (public addresses only); a local path is read only when
the caller allows it (the library does, the server never passes one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omniretrieve.errors import InputError
from omniretrieve.inputs import ImageInput, decode_image_bytes, open_image
from omniretrieve.runtime.fetch import FetchPolicy, fetch_url


def image_data(image: ImageInput, *, field: str, allow_paths: bool = True) -> bytes:
    source = image.source
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        return fetch_url(source, FetchPolicy(), field=field)
    if isinstance(source, str) and allow_paths and not source.startswith("data:"):
        if _is_file(source):
            return Path(source).expanduser().read_bytes()
    try:
        return decode_image_bytes(source, field=field)
    except InputError:
        if isinstance(source, str) and allow_paths:
            raise InputError(
                f"{field} is neither an existing file, a URL, a data URI nor base64",
                field=field,
            ) from None
        raise


def load_image(image: ImageInput, *, field: str, allow_paths: bool = True) -> Any:
    """The image as an RGB ``PIL.Image`` (pixel and byte limits applied)."""
    return open_image(image_data(image, field=field, allow_paths=allow_paths), field=field)


def _is_file(source: str) -> bool:
    try:
        return Path(source).expanduser().is_file()
    except (OSError, ValueError):  # base64 payloads make over-long or odd "paths"
        return False
