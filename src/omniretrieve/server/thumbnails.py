"""A stored document's picture for the page: a bounded thumbnail, or the whole image, drawn
from what the document holds (one of the collection's stored files, a stored PDF's page, an
inline data URI) and never from anywhere else: an image given as a path or a URL is not
read. Results are cached by content (a stored file's name is its hash; inline data is
hashed), in memory, within a byte budget."""

from __future__ import annotations

import hashlib
import io
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from omniretrieve.errors import CollectionNotFoundError, InputError
from omniretrieve.index.store import StoredDocument
from omniretrieve.index.stored_files import StoredFiles, parse_ref
from omniretrieve.inputs import decode_image_bytes, open_image

DEFAULT_WIDTH = 320
MAX_WIDTH = 1024
MIN_WIDTH = 16
CACHE_BYTES = 64 * 1024 * 1024
BASE64 = re.compile(r"[A-Za-z0-9+/\s]{16,}={0,2}\s*")


@dataclass(frozen=True)
class Picture:
    data: bytes
    media_type: str
    etag: str


class PictureCache:
    """Pictures by (content key, width), least recently used first out past ``max_bytes``."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int], Picture] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> Picture | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, int], picture: Picture) -> None:
        if len(picture.data) > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = picture
            self._size += len(picture.data)
            while self._size > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped.data)


def content_key(document: StoredDocument, field: str = "image") -> str:
    """What identifies a document's picture by content; an error for pictures not drawn
    here (none, a path, a URL)."""
    image = document.image
    if not image:
        raise CollectionNotFoundError(f"document {document.doc_id!r} has no image", field=field)
    stored = parse_ref(image)
    if stored is not None:
        return str(stored)
    if image.startswith("data:") or BASE64.fullmatch(image):
        return "inline:" + hashlib.sha256(image.encode("utf-8", "surrogatepass")).hexdigest()
    raise CollectionNotFoundError(
        f"document {document.doc_id!r} names its image by a path or URL, which the server "
        "does not read; index its folder again (its pictures are then kept by the collection)",
        field=field,
    )


def draw(
    document: StoredDocument,
    files: StoredFiles,
    *,
    width: int | None,
    max_image_bytes: int,
    max_pixels: int,
) -> Picture:
    """The document's picture: PNG ``width`` pixels wide at most (None: the whole image, a
    PDF page drawn at 144 dpi)."""
    key = content_key(document)
    stored = parse_ref(document.image)
    try:
        data = (
            files.image(stored) if stored is not None else decode_image_bytes(str(document.image))
        )
    except InputError as exc:
        raise CollectionNotFoundError(exc.message, field="image") from exc
    image = open_image(data, field="image", max_bytes=max_image_bytes, max_pixels=max_pixels)
    if width is not None and image.width > width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=width is not None)
    etag = hashlib.sha256(f"{key}|{width}".encode()).hexdigest()[:32]
    return Picture(buffer.getvalue(), "image/png", etag)


def check_width(width: int | None, full: bool) -> int | None:
    if full:
        return None
    chosen = DEFAULT_WIDTH if width is None else width
    if not MIN_WIDTH <= chosen <= MAX_WIDTH:
        raise InputError(
            f"width must be from {MIN_WIDTH} to {MAX_WIDTH} pixels (full=true for the whole image)",
            field="width",
        )
    return chosen
