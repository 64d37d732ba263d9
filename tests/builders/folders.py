"""A folder as users have them (issue 29): Markdown, HTML, Python with a coding line, Latin-1
and KOI8-R text, a PDF with a text layer and a scanned page, a PNG with text and a photo with
none, an empty file."""

from __future__ import annotations

from pathlib import Path

from tests.builders.documents import pdf_with_pages, text_image

LATIN1 = "Crème brûlée et café au lait: la pâtisserie française, déjà célèbre à Paris."
KOI8 = "Съешь же ещё этих мягких французских булок, да выпей чаю. Привет, мир."
PDF_PAGES = [
    "Glaciers carve U-shaped valleys as they slowly move downhill over centuries.",
    "Photosynthesis converts light energy into chemical energy in chloroplasts.",
]
SLIDE = ["Quarterly revenue grew", "by twelve percent"]


def user_folder(folder: Path, *, with_scan: bool = False) -> Path:
    """The folder; ``with_scan`` adds a PDF page with no text layer (needs OCR)."""
    (folder / "docs").mkdir(parents=True)
    (folder / "notes.md").write_text("# Giraffes\nGiraffes sleep less than two hours a day.\n")
    (folder / "docs" / "page.html").write_text(
        "<html><head><title>Tides</title></head><body><nav>Home | About</nav><article>"
        "<h1>Tides</h1><P >The Moon's gravity pulls the oceans.</P ><UL ><LI >&#13;Tides rise "
        "twice a day.</LI ></UL ></article></body></html>"
    )
    (folder / "legacy.py").write_bytes(
        "# -*- coding: latin-1 -*-\nGREETING = 'Grüße aus Köln'\n".encode("latin-1")
    )
    (folder / "latin1.txt").write_bytes(LATIN1.encode("latin-1"))
    (folder / "russian.txt").write_bytes(KOI8.encode("koi8-r"))
    (folder / "empty.txt").write_text("")
    pages: list[str | bytes] = list(PDF_PAGES)
    if with_scan:
        pages.append(text_image(["Volcanic eruptions release", "sulfur dioxide gas."]))
    pdf_with_pages(folder / "docs" / "spec.pdf", pages)
    (folder / "youtube-stream-status.png").write_bytes(text_image(SLIDE, (700, 200)))
    (folder / "photo.jpg").write_bytes(_photo())
    return folder


def _photo() -> bytes:
    """A picture with no text in it (a gradient)."""
    import io

    from PIL import Image

    image = Image.linear_gradient("L").convert("RGB").resize((160, 120))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()
