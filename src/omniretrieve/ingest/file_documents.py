"""One ingest for every door: a file (its relative path and bytes) into collection documents,
the same for a folder the CLI walks and for files uploaded through the server or the page.

- text and code: the encoding found (:mod:`~omniretrieve.ingest.text_files`);
- HTML: its readable text, not its markup;
- PDF: one document per page, the text layer where the page has one, else OCR;
- images (PNG, JPEG, WebP, TIFF frames): OCR'd text, and the picture itself for embedders
  that read images.

Every document carries the file's name as its title (so ``youtube stream status`` finds
``youtube-stream-status.png``) and, in ``metadata``, its path, suffix, the file's sha256 and,
for pages, the page number and where the text came from. Pictures are kept in the
collection's own files (:mod:`~omniretrieve.index.stored_files`): a page's ``image`` is a
``stored:`` reference, never a path.

What cannot be read is an error for that file alone (:class:`FileProblem`); what is fine but
has nothing to index (an empty file, a photo without text where nothing reads images) is a
note. Neither stops the other files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import PurePosixPath
from typing import Any

from omniretrieve.errors import InputError, LimitExceededError
from omniretrieve.ingest.images import IMAGE_SUFFIXES, image_pages
from omniretrieve.ingest.pdf import pdf_pages
from omniretrieve.ingest.text_files import HTML_SUFFIXES, decode_text, html_text

TEXT_SUFFIXES = frozenset(
    {
        ".txt",
        ".md",
        ".rst",
        ".py",
        ".js",
        ".ts",
        ".go",
        ".rs",
        ".java",
        ".c",
        ".h",
        ".cpp",
        ".hpp",
        ".rb",
        ".php",
        ".sh",
        ".sql",
        ".json",
        ".yaml",
        ".yml",
        ".toml",
        ".css",
        ".csv",
    }
)
VISUAL_SUFFIXES = IMAGE_SUFFIXES | {".pdf"}
INGESTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | VISUAL_SUFFIXES
MAX_VISUAL_BYTES = 200 * 1024 * 1024
OCR_CHUNK = 32
"""Pages read by OCR together (in parallel) at most."""

StoreFile = Callable[[bytes, str, "int | None"], str]
"""Keeps a file's bytes in the collection and returns the ``stored:`` reference (data, suffix,
page)."""


@dataclass(frozen=True)
class FileNote:
    path: str
    message: str


@dataclass
class ConvertedFiles:
    documents: list[dict[str, Any]] = field(default_factory=list)
    errors: list[FileNote] = field(default_factory=list)
    """Files that could not be read (exit code 2 in the CLI)."""
    notes: list[FileNote] = field(default_factory=list)
    """Files or pages with nothing to index: skipped, not wrong."""


def wanted(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in INGESTED_SUFFIXES


def size_limit(name: str, max_chars: int | None) -> int | None:
    """The most bytes a file of this kind may have, checked before it is read (a text file
    over 4 bytes per allowed character cannot fit)."""
    if PurePosixPath(name).suffix.lower() in VISUAL_SUFFIXES:
        return MAX_VISUAL_BYTES
    return None if max_chars is None else 4 * max_chars


class FileConverter:
    """Files into documents for one collection: ``reader`` is an OCR reader (None: pages
    that need OCR are noted and skipped unless an embedder reads images), ``store`` keeps the
    pictures, ``reads_images`` says whether an embedder of the collection reads images (asked
    only for a page without text: it may load the models),
    ``extra`` is added to every document's metadata (where the files came from)."""

    def __init__(
        self,
        *,
        reader: Any,
        store: StoreFile,
        reads_images: Callable[[], bool],
        max_chars: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.reader = reader
        self.store = store
        self._reads_images = reads_images
        self._images_read: bool | None = None
        self._scans: list[_Scan] = []
        self.max_chars = max_chars
        self.extra = dict(extra or {})

    def convert_many(
        self, files: Sequence[tuple[str, bytes]], advance: Callable[[int], None] | None = None
    ) -> ConvertedFiles:
        out = ConvertedFiles()
        for relative, data in files:
            self.convert(relative, data, out)
            if advance is not None:
                advance(1)
        self.finish()
        return out

    def convert(self, relative: str, data: bytes, out: ConvertedFiles) -> None:
        """Add ``relative``'s documents to ``out`` (or its error or note)."""
        suffix = PurePosixPath(relative).suffix.lower()
        base = {
            "path": relative,
            "suffix": suffix,
            "sha256": hashlib.sha256(data).hexdigest(),
            **self.extra,
        }
        limit = size_limit(relative, self.max_chars)
        try:
            if limit is not None and len(data) > limit:
                raise LimitExceededError(
                    f"{len(data)} bytes: over the limit of {limit} bytes for this kind of file"
                    + (" (--max-chars to raise it)" if suffix not in VISUAL_SUFFIXES else ""),
                    field="file",
                )
            if suffix == ".pdf":
                self._pdf(relative, data, base, out)
            elif suffix in IMAGE_SUFFIXES:
                self._image(relative, data, base, out)
            else:
                self._text(relative, data, suffix, base, out)
        except (InputError, LimitExceededError) as exc:
            out.errors.append(FileNote(relative, exc.message))

    # -- kinds ----------------------------------------------------------------------------
    def _text(
        self, relative: str, data: bytes, suffix: str, base: dict[str, Any], out: ConvertedFiles
    ) -> None:
        decoded = decode_text(data, suffix=suffix, label="the file")
        text = html_text(decoded.text) if suffix in HTML_SUFFIXES else decoded.text
        if self.max_chars is not None and len(text) > self.max_chars:
            raise LimitExceededError(
                f"holds {len(text)} characters: over the limit of {self.max_chars} characters "
                "(--max-chars to raise it)",
                field="file",
            )
        if not text.strip():
            out.notes.append(FileNote(relative, "no text in the file: nothing to index"))
            return
        metadata = {**base, "encoding": decoded.encoding}
        out.documents.append(self._document(relative, relative, text, None, metadata))

    def _pdf(self, relative: str, data: bytes, base: dict[str, Any], out: ConvertedFiles) -> None:
        pages = pdf_pages(data, field="the file")
        reference = _Lazy(lambda: self.store(data, ".pdf", None))
        for page in pages:
            scanned = page.image is not None
            metadata = {
                **base,
                "page": page.number,
                "pages": len(pages),
                "text_source": "ocr" if scanned else "pdf-text",
                "ocr": scanned,
            }
            doc_id = f"{relative}#page={page.number}"
            image = _Lazy(partial(_page_of, reference, page.number))
            if page.image is not None:
                self._later(_Scan(doc_id, relative, page.image, image, metadata, out))
            else:
                self._page(doc_id, relative, page.text, image, metadata, False, out)

    def _image(self, relative: str, data: bytes, base: dict[str, Any], out: ConvertedFiles) -> None:
        frames = image_pages(data, field="the file")
        suffix = str(base["suffix"])
        single = len(frames) == 1
        kept_as = suffix if single else ".png"
        for number, frame in enumerate(frames, 1):
            metadata = {
                **base,
                "page": number,
                "pages": len(frames),
                "text_source": "ocr",
                "ocr": True,
            }
            doc_id = relative if single else f"{relative}#page={number}"
            reference = _Lazy(partial(self.store, frame, kept_as, None))
            self._later(_Scan(doc_id, relative, frame, reference, metadata, out))

    def _later(self, scan: _Scan) -> None:
        """Pages that need OCR are read together (in parallel, across files), a chunk at a
        time so that their pixels never fill the memory."""
        self._scans.append(scan)
        if len(self._scans) >= OCR_CHUNK:
            self.finish()

    def finish(self) -> None:
        """Read the pages still waiting for OCR and add their documents (call it once the
        last file is converted)."""
        scans, self._scans = self._scans, []
        texts = self._read([scan.image for scan in scans])
        for scan, text in zip(scans, texts, strict=True):
            self._page(
                scan.doc_id, scan.relative, text, scan.reference, scan.metadata, True, scan.out
            )

    def _page(
        self,
        doc_id: str,
        relative: str,
        text: str | None,
        image: _Lazy,
        metadata: dict[str, Any],
        needs_ocr: bool,
        out: ConvertedFiles,
    ) -> None:
        if text is None:  # no OCR engine
            if not self.reads_images():
                out.notes.append(
                    FileNote(doc_id, "needs OCR, and no OCR engine is available: skipped")
                )
                return
            text = ""
        if not text.strip() and not self.reads_images():
            why = "no text found in the image" if needs_ocr else "no text on the page"
            out.notes.append(
                FileNote(doc_id, f"{why}, and no embedder of this collection reads images")
            )
            return
        out.documents.append(self._document(doc_id, relative, text, image(), metadata))

    def reads_images(self) -> bool:
        if self._images_read is None:
            self._images_read = self._reads_images()
        return self._images_read

    def _read(self, images: Sequence[bytes]) -> list[str | None]:
        if not images:
            return []
        if self.reader is None:
            return [None] * len(images)
        return list(self.reader.read_many(list(images)))

    @staticmethod
    def _document(
        doc_id: str, relative: str, text: str, image: str | None, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        title = PurePosixPath(relative).name
        document: dict[str, Any] = {
            "id": doc_id,
            "title": title,
            "text": text,
            "metadata": {**metadata, "title": title},
        }
        if image is not None:
            document["image"] = image
        return document


@dataclass(frozen=True)
class _Scan:
    """A page waiting for OCR."""

    doc_id: str
    relative: str
    image: bytes
    reference: _Lazy
    metadata: dict[str, Any]
    out: ConvertedFiles


def _page_of(reference: _Lazy, number: int) -> str:
    return f"{reference()}#page={number}"


class _Lazy:
    """A value made on first use and kept (a file is stored only when a document names it)."""

    def __init__(self, make: Callable[[], str]) -> None:
        self._make = make
        self._value: str | None = None

    def __call__(self) -> str:
        if self._value is None:
            self._value = self._make()
        return self._value
