"""Image files and PDFs as collection documents: one document per page, its text from the PDF's
text layer or from OCR, its page number and file in the metadata.

A file that cannot be read (truncated, too large, encrypted, no pages...) is reported and
skipped; every other file in the batch is still ingested.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omniretrieve.errors import OmniRetrieveError
from omniretrieve.ingest.files import SkippedFile, folder_files
from omniretrieve.ingest.images import IMAGE_SUFFIXES, image_pages
from omniretrieve.ingest.pdf import pdf_pages

VISUAL_SUFFIXES = IMAGE_SUFFIXES | {".pdf"}


@dataclass(frozen=True)
class _Page:
    doc_id: str
    metadata: dict[str, Any]
    image_ref: str
    text: str
    image: bytes | None


def visual_files(
    folder: Path, *, skipped: list[SkippedFile], follow_symlinks: bool = False
) -> list[Path]:
    """Image and PDF files under ``folder`` (symlinks out of it reported in ``skipped``)."""

    def wanted(path: Path) -> bool:
        return path.suffix.lower() in VISUAL_SUFFIXES

    return list(folder_files(folder, wanted, skipped=skipped, follow_symlinks=follow_symlinks))


def visual_documents(
    files: Iterable[Path],
    *,
    base: Path,
    reader: Any,
    skipped: list[SkippedFile],
    show_progress: bool = False,
) -> list[dict[str, Any]]:
    """Documents for ``files`` (paths under ``base``; ids are relative paths, with
    ``#page=N`` for pages of multi-page files). ``reader`` is an OCR reader, or None to skip
    pages that need OCR (reported in ``skipped``)."""
    pages: list[_Page] = []
    for path in files:
        relative = str(path.relative_to(base)) if path != base else path.name
        try:
            pages.extend(_pages_of(path, relative))
        except OmniRetrieveError as exc:
            skipped.append(SkippedFile(relative, exc.message))
        except OSError as exc:
            skipped.append(SkippedFile(relative, f"cannot read: {exc}"))
    needing = [p for p in pages if p.image is not None]
    if needing and reader is None:
        for page in needing:
            skipped.append(SkippedFile(page.doc_id, "needs OCR, and no OCR engine is available"))
        pages = [p for p in pages if p.image is None]
        needing = []
    texts = iter(
        reader.read_many([p.image for p in needing], show_progress=show_progress) if needing else []
    )
    documents = []
    for page in pages:
        text = next(texts) if page.image is not None else page.text
        if not text.strip():
            skipped.append(SkippedFile(page.doc_id, "no text found on the page"))
            continue
        documents.append(
            {"id": page.doc_id, "text": text, "image": page.image_ref, "metadata": page.metadata}
        )
    return documents


def _pages_of(path: Path, relative: str) -> list[_Page]:
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        found = pdf_pages(data, field=relative)
        return [
            _Page(
                f"{relative}#page={page.number}",
                {
                    "path": relative,
                    "page": page.number,
                    "suffix": suffix,
                    "text_source": "ocr" if page.image is not None else "pdf-text",
                    "ocr": page.image is not None,
                },
                f"{relative}#page={page.number}",
                page.text,
                page.image,
            )
            for page in found
        ]
    frames = image_pages(data, field=relative)
    single = len(frames) == 1
    return [
        _Page(
            relative if single else f"{relative}#page={number}",
            {
                "path": relative,
                "page": number,
                "suffix": suffix,
                "text_source": "ocr",
                "ocr": True,
            },
            relative if single else f"{relative}#page={number}",
            "",
            frame,
        )
        for number, frame in enumerate(frames, start=1)
    ]
