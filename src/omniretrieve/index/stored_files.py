"""The files a collection keeps of its documents: the image files and PDFs they were made
from, each stored once under its content hash in ``<collection>/files/``.

A document made from a page of such a file names it as ``stored:<sha256><suffix>`` (with
``#page=N`` for a PDF page), so its picture can always be shown and embedded again, whatever
happens to the file it came from, and nothing outside the collection's folder is ever read for
it. A file is written (and fsynced) before the document that names it is acknowledged; files
that no document names any more are removed when the collection is next opened for writing.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from omniretrieve.errors import InputError
from omniretrieve.index.snapshots import fsync_dir

PREFIX = "stored:"
FOLDER = "files"
NAME = re.compile(r"(?P<name>[0-9a-f]{64}(?:\.[a-z0-9]{1,8})?)(?:#page=(?P<page>[1-9][0-9]{0,5}))?")
RENDER_SCALE = 2.0
"""Pixels per PDF point when a stored PDF's page is drawn (2.0 = 144 dpi)."""


@dataclass(frozen=True)
class StoredRef:
    name: str
    """``<sha256><suffix>``: the file's name in the collection's ``files/`` folder."""
    page: int | None

    @property
    def is_pdf(self) -> bool:
        return self.name.endswith(".pdf")

    def __str__(self) -> str:
        return PREFIX + self.name + (f"#page={self.page}" if self.page else "")


def parse_ref(image: str | None) -> StoredRef | None:
    """The stored file a document's ``image`` names, or None when it names none."""
    if not image or not image.startswith(PREFIX):
        return None
    match = NAME.fullmatch(image[len(PREFIX) :])
    if match is None:
        raise InputError(
            f"image {image[:80]!r} is not a stored file reference (stored:<sha256>.<suffix>)",
            field="image",
        )
    page = match.group("page")
    return StoredRef(match.group("name"), int(page) if page else None)


class StoredFiles:
    def __init__(self, collection_directory: Path) -> None:
        self.directory = collection_directory / FOLDER

    def put(self, data: bytes, suffix: str, page: int | None = None) -> str:
        """Keep ``data`` (once per content) and return the reference a document names it by."""
        suffix = suffix.lower()
        if suffix and not re.fullmatch(r"\.[a-z0-9]{1,8}", suffix):
            suffix = ""
        name = hashlib.sha256(data).hexdigest() + suffix
        path = self.directory / name
        if not path.is_file() or path.stat().st_size != len(data):
            self.directory.mkdir(exist_ok=True)
            staging = path.with_name(f".{name}.{os.getpid()}.tmp")
            with open(staging, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(staging, path)
            fsync_dir(self.directory)
        return str(StoredRef(name, page))

    def read(self, ref: StoredRef) -> bytes:
        path = self.directory / ref.name
        if not path.is_file():
            raise InputError(
                f"the collection's stored file {ref.name} is missing (index the document again)",
                field="image",
            )
        return path.read_bytes()

    def image(self, ref: StoredRef) -> bytes:
        """The encoded image a reference names: the stored image file, or a stored PDF's page
        drawn as PNG."""
        data = self.read(ref)
        if not ref.is_pdf:
            return data
        return render_pdf_page(data, ref.page or 1)

    def sweep(self, referenced: Iterable[str | None]) -> int:
        """Remove the stored files no document names (and staging files a crash left);
        returns how many were removed."""
        if not self.directory.is_dir():
            return 0
        kept = set()
        for image in referenced:
            try:
                ref = parse_ref(image)
            except InputError:
                continue
            if ref is not None:
                kept.add(ref.name)
        removed = 0
        for path in self.directory.iterdir():
            if path.name not in kept:
                path.unlink(missing_ok=True)
                removed += 1
        if removed:
            fsync_dir(self.directory)
        return removed


def render_pdf_page(data: bytes, page: int, scale: float = RENDER_SCALE) -> bytes:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        if not 1 <= page <= len(document):
            raise InputError(f"the stored PDF has no page {page}", field="image")
        buffer = io.BytesIO()
        document[page - 1].render(scale=scale).to_pil().convert("RGB").save(buffer, format="PNG")
        return buffer.getvalue()
    finally:
        document.close()
