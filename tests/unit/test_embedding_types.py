from __future__ import annotations

import base64

import numpy as np
import pytest

from omniretrieve.embedding_types import (
    EMBEDDING_TYPES,
    convert_embeddings,
    int8_range,
    to_json_values,
    truncate_dimensions,
)
from omniretrieve.errors import InputError


@pytest.fixture()
def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(4, 384)).astype(np.float32)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def test_the_one_list_of_types() -> None:
    assert EMBEDDING_TYPES == ("float", "base64", "binary", "ubinary", "int8", "uint8")


def test_float_is_identity(vectors: np.ndarray) -> None:
    out = convert_embeddings(vectors, "float")
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, vectors)


def test_base64_round_trips_little_endian_float32(vectors: np.ndarray) -> None:
    out = convert_embeddings(vectors, "base64")
    assert isinstance(out, list) and all(isinstance(s, str) for s in out)
    decoded = np.frombuffer(base64.b64decode(out[1]), dtype="<f4")
    np.testing.assert_array_equal(decoded, vectors[1])


def test_binary_and_ubinary_pack_sign_bits(vectors: np.ndarray) -> None:
    ubinary = convert_embeddings(vectors, "ubinary")
    binary = convert_embeddings(vectors, "binary")
    assert isinstance(ubinary, np.ndarray) and ubinary.dtype == np.uint8
    assert isinstance(binary, np.ndarray) and binary.dtype == np.int8
    assert ubinary.shape == (4, 48)
    bits = np.unpackbits(ubinary, axis=1)
    np.testing.assert_array_equal(bits.astype(bool), vectors > 0)
    np.testing.assert_array_equal(binary.astype(np.int16) + 128, ubinary.astype(np.int16))
    # most significant bit first: a vector positive only in dimension 0 packs to 0b10000000
    one_hot = np.zeros((1, 8), dtype=np.float32)
    one_hot[0, 0] = 1.0
    assert convert_embeddings(one_hot, "ubinary")[0, 0] == 128


def test_int8_and_uint8_quantisation(vectors: np.ndarray) -> None:
    codes = convert_embeddings(vectors, "int8")
    assert isinstance(codes, np.ndarray) and codes.dtype == np.int8
    scale = int8_range(384)
    restored = codes.astype(np.float32) / 127.0 * scale
    assert np.abs(restored - np.clip(vectors, -scale, scale)).max() <= scale / 127.0
    # similarity survives quantisation
    exact = vectors @ vectors.T
    approx = restored @ restored.T
    assert np.abs(exact - approx).max() < 0.02
    unsigned = convert_embeddings(vectors, "uint8")
    np.testing.assert_array_equal(unsigned.astype(np.int16) - 128, codes.astype(np.int16))


def test_json_values_are_plain_python(vectors: np.ndarray) -> None:
    values = to_json_values(convert_embeddings(vectors, "int8"))
    assert isinstance(values[0][0], int)
    assert isinstance(to_json_values(convert_embeddings(vectors, "float"))[0][0], float)


def test_unknown_type_is_an_error(vectors: np.ndarray) -> None:
    with pytest.raises(InputError, match="embedding_type must be one of"):
        convert_embeddings(vectors, "float16")


def test_matryoshka_truncation_renormalises(vectors: np.ndarray) -> None:
    out = truncate_dimensions(vectors, 64, model_dimension=384, normalize=True)
    assert out.shape == (4, 64)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    raw = truncate_dimensions(vectors, 64, model_dimension=384, normalize=False)
    np.testing.assert_array_equal(raw, vectors[:, :64])


@pytest.mark.parametrize("bad", [0, -3, 385, 10_000])
def test_dimensions_out_of_range(vectors: np.ndarray, bad: int) -> None:
    with pytest.raises(InputError, match="between 1 and the model's dimension 384") as info:
        truncate_dimensions(vectors, bad, model_dimension=384, normalize=True)
    assert info.value.field == "dimensions"
