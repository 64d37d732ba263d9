"""Visual test documents built on the spot: PDFs with and without a text layer, page images,
and broken files."""

from __future__ import annotations

import io
from pathlib import Path


def text_image(lines: list[str], size: tuple[int, int] = (1200, 400)) -> bytes:
    """A PNG of black text on white, large enough for OCR."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=42)
    for row, line in enumerate(lines):
        draw.text((40, 40 + row * 70), line, fill=0, font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def pdf_with_pages(path: Path, pages: list[str | bytes]) -> Path:
    """A PDF whose pages are text (a real text layer, via matplotlib) or PNG bytes (a scan:
    pixels only, no text layer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages
    from PIL import Image

    with PdfPages(path) as pdf:
        for page in pages:
            figure = plt.figure(figsize=(8.5, 4))
            if isinstance(page, str):
                figure.text(0.05, 0.5, page, fontsize=14, wrap=True)
            else:
                axes = figure.add_axes((0, 0, 1, 1))
                axes.imshow(Image.open(io.BytesIO(page)), cmap="gray")
                axes.axis("off")
            pdf.savefig(figure)
            plt.close(figure)
    return path


COPIES_QUERY = "aspirin heart attack risk"
_ASPIRIN = "Low dose aspirin lowers the risk of a first heart attack in adults over fifty."
NEAR_COPIES = [
    {"id": "copy-1", "text": _ASPIRIN},
    {"id": "copy-2", "text": _ASPIRIN + " "},
    {"id": "copy-3", "text": _ASPIRIN.replace("adults", "Adults")},
    {"id": "statins", "text": "Statins reduce heart attack risk by lowering cholesterol."},
    {"id": "exercise", "text": "Regular exercise protects the heart and lowers attack risk."},
]
"""Three near-copies of one document and two others (diversity and duplicate collapse)."""
