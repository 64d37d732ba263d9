"""The ``sentence-encoder`` family: BERT-like checkpoints (all-MiniLM-L6-v2, e5, bge, gte ...)
run by :class:`~omniretrieve.models.sentence_encoder.SentenceEncoder`."""

from __future__ import annotations

from omniretrieve.errors import UnsupportedModelError
from omniretrieve.models.sentence_encoder import EncoderLayout, SentenceEncoder, is_encoder
from omniretrieve.models.sources import CheckpointInfo, Family


def _dimension(info: CheckpointInfo) -> int | None:
    try:
        return EncoderLayout.read(info).dimension or None
    except UnsupportedModelError:
        return None


FAMILY = Family(
    name="sentence-encoder",
    kind="embedder",
    modalities=frozenset({"text"}),
    matches=is_encoder,
    loader=lambda: SentenceEncoder,
    dimension=_dimension,
)
