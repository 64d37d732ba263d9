"""Embedding output types shared by the library, the CLI and the server.

- ``float``: float32 values.
- ``base64``: the little-endian float32 bytes, base64-encoded (OpenAI's ``encoding_format``).
- ``binary`` / ``ubinary``: one bit per dimension (1 where the value is > 0), packed eight to a
  byte, most significant bit first; ``ubinary`` as uint8, ``binary`` as int8 (byte - 128),
  as in the Jina and Cohere APIs.
- ``int8`` / ``uint8``: symmetric linear scalar quantisation of *normalised* embeddings with a
  fixed range per dimension count, ``r = min(1, 6 / sqrt(d))``: ``int8 = round(127 * clip(x / r,
  -1, 1))`` and ``uint8 = int8 + 128``. The range is fixed (not fitted to the batch), so codes
  from different requests are comparable; for a unit vector almost no component lies outside it.
"""

from __future__ import annotations

import base64
import math
from typing import Any, Literal, get_args

import numpy as np

from omniretrieve.errors import InputError

EmbeddingType = Literal["float", "base64", "binary", "ubinary", "int8", "uint8"]
EMBEDDING_TYPES: tuple[str, ...] = get_args(EmbeddingType)


def check_embedding_type(value: str, *, field: str = "embedding_type") -> EmbeddingType:
    if value not in EMBEDDING_TYPES:
        raise InputError(
            f"{field} must be one of {', '.join(EMBEDDING_TYPES)}; got {value!r}", field=field
        )
    return value  # type: ignore[return-value]


def int8_range(dimension: int) -> float:
    return min(1.0, 6.0 / math.sqrt(dimension))


def convert_embeddings(vectors: np.ndarray, embedding_type: str) -> np.ndarray | list[str]:
    """Convert a float32 matrix (n, d) into the requested type (array rows or base64 strings)."""
    check_embedding_type(embedding_type)
    vectors = np.asarray(vectors, dtype=np.float32)
    if embedding_type == "float":
        return vectors
    if embedding_type == "base64":
        little_endian = vectors.astype("<f4", copy=False)
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in little_endian]
    if embedding_type in ("binary", "ubinary"):
        packed = np.packbits(vectors > 0, axis=-1)
        if embedding_type == "ubinary":
            return packed
        return (packed.astype(np.int16) - 128).astype(np.int8)
    scale = int8_range(vectors.shape[-1])
    codes = np.rint(np.clip(vectors / scale, -1.0, 1.0) * 127.0).astype(np.int8)
    if embedding_type == "int8":
        return codes
    return (codes.astype(np.int16) + 128).astype(np.uint8)


def to_json_values(converted: np.ndarray | list[str]) -> list[Any]:
    """Rows of :func:`convert_embeddings` output as JSON-ready values."""
    if isinstance(converted, list):
        return converted
    return converted.tolist()


def truncate_dimensions(
    vectors: np.ndarray, dimensions: int | None, *, model_dimension: int, normalize: bool
) -> np.ndarray:
    """Matryoshka truncation to ``dimensions`` followed by re-normalisation when asked."""
    if dimensions is not None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int):
            raise InputError("dimensions must be an integer", field="dimensions")
        if dimensions < 1 or dimensions > model_dimension:
            raise InputError(
                f"dimensions must be between 1 and the model's dimension {model_dimension}; "
                f"got {dimensions}",
                field="dimensions",
            )
        vectors = vectors[:, :dimensions]
    if normalize:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
    return np.ascontiguousarray(vectors, dtype=np.float32)
