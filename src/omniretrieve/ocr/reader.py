"""OCR over many images: cached by image content, pages read in parallel across cores.

The cache key is (engine, engine version, sha256 of the image bytes), so the same page is
read once however many collections or eval runs see it; entries are written to a temporary
file and renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from omniretrieve.inputs import open_image
from omniretrieve.ocr.engines import OcrEngine, load_engine
from omniretrieve.runtime.cache import default_cache_dir
from omniretrieve.runtime.progress import progress_bar


class OcrCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_cache_dir()) / "ocr"

    def path_for(self, engine: OcrEngine, data: bytes) -> Path:
        digest = hashlib.sha256(data).hexdigest()
        label = f"{engine.name}-{engine.version}".replace("/", "_").replace(" ", "_")
        return self.root / label / digest[:2] / f"{digest}.txt"

    def get(self, engine: OcrEngine, data: bytes) -> str | None:
        path = self.path_for(engine, data)
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def put(self, engine: OcrEngine, data: bytes, text: str) -> None:
        path = self.path_for(engine, data)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, suffix=".tmp", delete=False, encoding="utf-8"
        ) as handle:
            handle.write(text)
        os.replace(handle.name, path)


class OcrReader:
    """Reads images (encoded bytes) to text with one engine, a cache and a worker per core."""

    def __init__(
        self,
        engine: OcrEngine | str = "tesseract",
        *,
        cache: OcrCache | None = None,
        workers: int | None = None,
    ) -> None:
        self.engine = load_engine(engine) if isinstance(engine, str) else engine
        self.cache = cache if cache is not None else OcrCache()
        self.workers = max(1, workers or os.cpu_count() or 1)

    def read_one(self, data: bytes, image: Any = None) -> str:
        """Text of one encoded image (``image``: the already decoded PIL image, if any)."""
        cached = self.cache.get(self.engine, data)
        if cached is not None:
            return cached
        if image is None:
            image = open_image(data)
        text = self.engine.read(image).strip()
        self.cache.put(self.engine, data, text)
        return text

    def read_many(
        self, images: Sequence[bytes], *, show_progress: bool = False, description: str = "OCR"
    ) -> list[str]:
        """Texts of many encoded images, in order; pages run in parallel (tesseract runs as a
        subprocess per page, so threads give real parallelism)."""
        texts: list[str] = [""] * len(images)
        with (
            progress_bar(len(images), description, enabled=show_progress) as advance,
            ThreadPoolExecutor(self.workers) as pool,
        ):
            futures = {pool.submit(self.read_one, data): i for i, data in enumerate(images)}
            for future in as_completed(futures):
                texts[futures[future]] = future.result()
                advance(1)
        return texts
