"""OCR engines behind one small interface.

- ``tesseract``: Debian's ``tesseract-ocr`` (Apache-2.0) through ``pytesseract``; the setup
  installs it. The default: on ``scifact_pages`` it read the most words right at the lowest
  cost per page of the engines tried (see the README's OCR table for the measurement).
- ``rapidocr``: PP-OCR models in ONNX shipped inside ``rapidocr-onnxruntime`` (Apache-2.0),
  used when installed and asked for.

An engine reads one image (PIL) and returns its text in reading order.
"""

from __future__ import annotations

import os
import shutil
from functools import cached_property
from importlib.metadata import version
from typing import Any, Protocol

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.errors import OcrUnavailableError as OcrUnavailableError

ENGINES = ("tesseract", "rapidocr")


class OcrEngine(Protocol):
    name: str

    @property
    def version(self) -> str: ...

    def read(self, image: Any) -> str: ...


class TesseractEngine:
    name = "tesseract"

    def __init__(self, languages: str = "eng") -> None:
        if shutil.which("tesseract") is None:
            raise OcrUnavailableError(
                "OCR needs the tesseract binary: apt-get install tesseract-ocr "
                "(make install does this on Debian/Ubuntu)"
            )
        self.languages = languages

    @cached_property
    def version(self) -> str:
        import pytesseract

        return str(pytesseract.get_tesseract_version())

    def read(self, image: Any) -> str:
        import pytesseract

        # one tesseract thread per page: pages are read in parallel instead
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        return str(pytesseract.image_to_string(image, lang=self.languages))


class RapidOcrEngine:
    name = "rapidocr"

    def __init__(self) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise OcrUnavailableError(
                "the rapidocr engine needs: pip install rapidocr-onnxruntime"
            ) from exc
        self._ocr = RapidOCR()

    @property
    def version(self) -> str:

        return version("rapidocr-onnxruntime")

    def read(self, image: Any) -> str:

        result, _ = self._ocr(np.asarray(image.convert("RGB")))
        return "\n".join(str(line[1]) for line in result or [])


def load_engine(name: str = "tesseract") -> OcrEngine:
    if name == "tesseract":
        return TesseractEngine()
    if name == "rapidocr":
        return RapidOcrEngine()

    raise InputError(f"OCR engine must be one of {', '.join(ENGINES)}; got {name!r}", field="ocr")
