"""PDF pages with pypdfium2 (Apache-2.0 / BSD: PDFium): the text layer where a page has one,
otherwise the page rendered to an image for OCR."""

from __future__ import annotations

import io
from dataclasses import dataclass

from omniretrieve.errors import InputError, LimitExceededError

DEFAULT_MAX_PAGES = 2000
RENDER_SCALE = 2.0
"""Pixels per PDF point when a page is rendered for OCR (2.0 = 144 dpi)."""
PASSWORD_ERROR = 4
"""PDFium's FPDF_ERR_PASSWORD."""
MIN_TEXT_CHARS = 20
"""A page whose text layer has fewer characters than this is treated as a scan."""


@dataclass(frozen=True)
class PdfPage:
    number: int
    """1-based page number."""
    text: str
    """The text layer (empty when the page needs OCR)."""
    image: bytes | None
    """The rendered page (PNG) when it has no usable text layer."""


def pdf_pages(
    data: bytes,
    *,
    field: str = "pdf",
    max_pages: int = DEFAULT_MAX_PAGES,
    max_bytes: int = 200 * 1024 * 1024,
) -> list[PdfPage]:
    import pypdfium2 as pdfium

    if len(data) > max_bytes:
        raise LimitExceededError(
            f"{field} is {len(data)} bytes; the limit is {max_bytes}", field=field
        )
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        # PDFium's last-error code can be left over from an earlier document, so the file
        # itself says whether it is encrypted
        code = getattr(exc, "err_code", None)
        if b"/Encrypt" in data:
            raise InputError(f"{field} is encrypted (password protected)", field=field) from exc
        if code in (0, PASSWORD_ERROR):  # no error of its own: an empty or broken page tree
            raise InputError(
                f"{field} could not be opened: it has no pages or a damaged page tree",
                field=field,
            ) from exc
        raise InputError(f"{field} is not a readable PDF: {exc}", field=field) from exc
    try:
        count = len(document)
        if count == 0:
            raise InputError(f"{field} has no pages", field=field)
        if count > max_pages:
            raise LimitExceededError(
                f"{field} has {count} pages; the limit is {max_pages}", field=field
            )
        pages = []
        for index in range(count):
            page = document[index]
            text = page.get_textpage().get_text_range().replace("\r\n", "\n").strip()
            image = None
            if len(text) < MIN_TEXT_CHARS:
                buffer = io.BytesIO()
                page.render(scale=RENDER_SCALE).to_pil().convert("L").save(buffer, format="PNG")
                image, text = buffer.getvalue(), ""
            pages.append(PdfPage(index + 1, text, image))
        return pages
    finally:
        document.close()
