"""The fields a model gives a collection beyond one vector per passage, stored in the same
passage rows as dense vectors (so the WAL, snapshots, metadata-only updates, deletes and the
Milvus row format take them as they are):

- ``multivector-<model>``: one row per token vector, each with its passage's span (a
  passage's rows are those in a run of one span);
- ``sparse-<model>``: one ``(token id, weight)`` row per learned token weight, each with its
  passage's span (token ids are exact in float32 below 2**24; XLM-R has 250,002).

A model's outputs (:data:`~omniretrieve.multi_vector.OUTPUTS`) come from one pass per chunk
of passages (:func:`embed_passages`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from omniretrieve.index.settings import FIELD_OUTPUTS, field_name, list_name
from omniretrieve.multi_vector import SparseEmbedding

Fields = dict[str, dict[str, tuple[list[tuple[int, int]], np.ndarray]]]
"""Field name -> document id -> (its rows' spans, its rows)."""
MAX_TOKEN_ID = 2**24
"""Token ids a ``sparse-`` row holds exactly (float32's integers)."""


def model_outputs(embedder: Any) -> tuple[str, ...]:
    """The fields a collection keeps for this embedder's model, in list order."""
    outputs: Any = getattr(embedder, "outputs", None)  # eval's embedder knows without loading
    if outputs is None:
        outputs = getattr(getattr(embedder, "model", None), "outputs", frozenset({"dense"}))
    return tuple(o for o in FIELD_OUTPUTS if o in outputs)


def model_lists(model_id: str, outputs: Sequence[str]) -> tuple[str, ...]:
    return tuple(list_name(model_id, o) for o in outputs)


def sparse_rows(embedding: SparseEmbedding) -> np.ndarray:
    """A passage's learned weights as ``(token id, weight)`` float32 rows."""
    if len(embedding.indices) and int(embedding.indices.max()) >= MAX_TOKEN_ID:
        raise ValueError(f"token id {int(embedding.indices.max())} is beyond {MAX_TOKEN_ID}")
    return np.stack(
        [embedding.indices.astype(np.float32), embedding.values.astype(np.float32)], axis=1
    ).reshape(-1, 2)


def passage_runs(spans: Sequence[Any]) -> list[tuple[int, int]]:
    """The (first, end) rows of each passage: runs of one span."""
    runs: list[tuple[int, int]] = []
    start = 0
    for row in range(1, len(spans) + 1):
        if row == len(spans) or tuple(spans[row]) != tuple(spans[start]):
            runs.append((start, row))
            start = row
    return runs


@dataclass
class PassageOutputs:
    """Per passage (in order), each output asked for."""

    dense: list[np.ndarray]
    sparse: list[SparseEmbedding]
    multivectors: list[np.ndarray]


def embed_passages(
    embedder: Any,
    inputs: Sequence[Any],
    outputs: Sequence[str],
    *,
    chunk: int,
    before_chunk: Callable[[], None],
) -> PassageOutputs:
    """Every output of ``outputs`` for each passage input (a text or an image), one pass a
    chunk; ``before_chunk`` runs before each (a stop check)."""
    found = PassageOutputs([], [], [])
    for start in range(0, len(inputs), chunk):
        before_chunk()
        result = embedder.encode(
            list(inputs[start : start + chunk]),
            task="retrieval.passage",
            return_sparse="sparse" in outputs,
            return_multivector="multivector" in outputs,
        )
        if "dense" in outputs:
            found.dense.extend(np.asarray(result.embeddings, dtype=np.float32))
        if result.sparse is not None:
            found.sparse.extend(result.sparse)
        if result.multivectors is not None:
            found.multivectors.extend(np.asarray(m, dtype=np.float32) for m in result.multivectors)
    return found


def field_entries(
    model_id: str,
    outputs: Sequence[str],
    spans_by_doc: dict[str, list[tuple[int, int]]],
    found: PassageOutputs,
) -> Fields:
    """Per field of the model, per document: its rows' spans and its rows."""
    fields: Fields = {}
    position = 0
    for doc_id, spans in spans_by_doc.items():
        passages = range(position, position + len(spans))
        position += len(spans)
        for output in outputs:
            if output == "dense":
                rows = [found.dense[i] for i in passages]
                per_passage = [1] * len(spans)
            elif output == "sparse":
                rows = [sparse_rows(found.sparse[i]) for i in passages]
                per_passage = [len(r) for r in rows]
            else:
                rows = [found.multivectors[i] for i in passages]
                per_passage = [len(r) for r in rows]
            repeated = [span for span, n in zip(spans, per_passage, strict=True) for _ in range(n)]
            matrix = (
                np.vstack(rows).astype(np.float32)
                if rows
                else np.zeros((0, _width(output, found)), np.float32)
            )
            fields.setdefault(field_name(model_id, output), {})[doc_id] = (repeated, matrix)
    return fields


def _width(output: str, found: PassageOutputs) -> int:
    """The width of an output's rows (for a document with no passage of it)."""
    if output == "sparse":
        return 2
    source = found.dense if output == "dense" else found.multivectors
    return int(np.atleast_2d(source[0]).shape[-1]) if source else 0
