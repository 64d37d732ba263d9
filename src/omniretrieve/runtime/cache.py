"""On-disk cache of computed embeddings, keyed by (model fingerprint, task, content hash).

A second encode of the same texts by the same weights is a file read. Entries are written to a
temporary file and renamed into place, so an interrupted run never leaves a torn entry.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from omniretrieve.hashing import texts_hash


def default_cache_dir() -> Path:
    override = os.environ.get("OMNIRETRIEVE_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "omniretrieve"


class EmbeddingCache:
    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_cache_dir()) / "embeddings"

    def path_for(self, model_key: str, task: str | None, texts: Sequence[str]) -> Path:
        return self.root / model_key / f"{task or 'none'}-{texts_hash(list(texts))[:32]}.npy"

    def get_or_compute(
        self,
        model_key: str,
        task: str | None,
        texts: Sequence[str],
        compute: Callable[[Sequence[str]], np.ndarray],
    ) -> np.ndarray:
        target = self.path_for(model_key, task, texts)
        if target.is_file():
            cached = np.load(target)
            if cached.shape[0] == len(texts):
                return cached
        vectors = np.asarray(compute(texts), dtype=np.float32)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".tmp", delete=False) as tmp:
            np.save(tmp, vectors)
        os.replace(tmp.name, target)
        return vectors
