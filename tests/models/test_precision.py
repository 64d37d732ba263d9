"""Precisions: what ``auto`` resolves to per family and CPU, int8 through onnxruntime (built
once, cached by fingerprint), and the precision in the keys of cached vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.errors import InputError
from omniretrieve.models.clip import DualEncoder
from omniretrieve.models.sentence_encoder import SentenceEncoder
from omniretrieve.models.use_multilingual import UseMultilingual
from omniretrieve.runtime import precision

TEXTS = [
    "The Eiffel Tower was completed in 1889.",
    "Protein intake recommendations for adult women",
    "short",
    "a somewhat longer passage about cells, their membranes and how ions cross them " * 4,
]


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_for_sentence_encoders_only_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    monkeypatch.setattr(precision, "native_bfloat16", lambda: native)
    assert SentenceEncoder.runs_in("auto", "cpu") == ("bfloat16" if native else "float32")
    assert SentenceEncoder.runs_in("auto", "cuda") == "float16"
    assert SentenceEncoder.runs_in("float32", "cpu") == "float32"
    assert DualEncoder.runs_in("auto", "cpu") == "float32"  # no recorded check for CLIP
    assert UseMultilingual.runs_in("bfloat16", "cpu") == "float32"  # numpy, float32 weights


@pytest.mark.parametrize(("value", "native"), [("0", False), ("1", True)])
def test_the_environment_says_what_the_cpu_is_taken_for(
    monkeypatch: pytest.MonkeyPatch, value: str, native: bool
) -> None:
    """``$OMNIRETRIEVE_CPU_BF16`` pins what ``auto`` means (the tests pin 0: the same
    numbers on every CPU, issue 28 item 10)."""
    monkeypatch.setenv(precision.CPU_BF16_ENV, value)
    precision.native_bfloat16.cache_clear()
    try:
        assert precision.native_bfloat16() is native
        assert SentenceEncoder.runs_in("auto", "cpu") == ("bfloat16" if native else "float32")
    finally:
        monkeypatch.undo()
        precision.native_bfloat16.cache_clear()


def test_int8_is_refused_clearly_where_it_does_not_exist(tmp_path: Path) -> None:
    from tests.builders.tiny_clip import build_tiny_clip

    with pytest.raises(InputError, match="sentence encoders") as info:
        Embedder(build_tiny_clip(tmp_path / "clip"), dtype="int8")
    assert info.value.field == "dtype"
    with pytest.raises(InputError, match="CPU only"):
        SentenceEncoder.runs_in("int8", "cuda")
    with pytest.raises(InputError, match="dtype must be one of"):
        Embedder(dtype="int4")


def test_int8_is_close_to_float32_and_built_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMNIRETRIEVE_CACHE", str(tmp_path))
    exact = Embedder(dtype="float32").encode(TEXTS).embeddings
    quantised = Embedder(dtype="int8")
    assert quantised.dtype == "int8" and quantised.fingerprint.endswith("-int8")
    (artefact,) = (tmp_path / "models" / "onnx-int8").glob("*.onnx")
    built = artefact.stat().st_mtime_ns
    cosines = (quantised.encode(TEXTS).embeddings * exact).sum(axis=1)
    assert cosines.min() > 0.98, cosines
    again = Embedder(dtype="int8")  # the cached graph, not a second export
    assert artefact.stat().st_mtime_ns == built
    np.testing.assert_allclose(again.encode(TEXTS).embeddings, quantised.encode(TEXTS).embeddings)


def test_bf16_vectors_are_close_and_keyed_apart() -> None:
    exact = Embedder(dtype="float32")
    half = Embedder(dtype="bfloat16")
    cosines = (half.encode(TEXTS).embeddings * exact.encode(TEXTS).embeddings).sum(axis=1)
    assert cosines.min() > 0.999, cosines
    assert exact.fingerprint != half.fingerprint
    assert half.fingerprint == f"{exact.fingerprint}-bfloat16"


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "auto"])
def test_cache_key_without_loading_matches_the_loaded_model(tmp_path: Path, dtype: str) -> None:
    from omniretrieve.eval.caching import CachingEmbedder
    from omniretrieve.runtime.cache import EmbeddingCache

    unloaded = CachingEmbedder("all-MiniLM-L6-v2", EmbeddingCache(tmp_path), dtype=dtype)
    assert unloaded.cache_key() == Embedder(dtype=dtype).fingerprint
