"""BGE-M3: dense, learned-sparse and multi-vector outputs from one XLM-R pass, as FlagEmbedding's
``BGEM3FlagModel`` computes them (recipe in ``docs/models.md``).

The checkpoint is a sentence-transformers XLM-R encoder (CLS pooling) with two heads beside
it, each a ``torch.nn.Linear`` state dict: ``sparse_linear.pt`` (hidden -> 1) and
``colbert_linear.pt`` (hidden -> hidden). Per input, from the last hidden states:

- dense: the CLS state, L2-normalised;
- sparse: ``relu(sparse_linear(state))`` per token; per token id the largest weight; the CLS,
  EOS, PAD and UNK ids and non-positive weights dropped;
- multi-vector: ``colbert_linear`` over every state but CLS's (EOS kept), each vector
  L2-normalised: ``tokens - 1`` vectors.

Recognised by its files (an encoder architecture with both heads), never by its name: without
the heads the same weights load as a plain sentence encoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.errors import UnsupportedModelError
from omniretrieve.inputs import Input
from omniretrieve.models.base import (
    LoadOptions,
    MultiEncodeOutput,
    ProgressCallback,
)
from omniretrieve.models.sentence_encoder import EncoderLayout, SentenceEncoder, is_encoder
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource
from omniretrieve.multi_vector import OUTPUTS, SparseEmbedding
from omniretrieve.runtime.batching import plan_batches

SPARSE_HEAD = "sparse_linear.pt"
COLBERT_HEAD = "colbert_linear.pt"


def _matches(info: CheckpointInfo) -> bool:
    return is_encoder(info) and {SPARSE_HEAD, COLBERT_HEAD} <= set(info.files)


def load_head(path: Path, device: str, dtype: Any) -> Any:
    """A ``Linear`` from its saved state dict (``weight``, ``bias``), tensors only."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or "weight" not in state:
        raise UnsupportedModelError(f"{path} is not a Linear layer's state dict")
    out_features, in_features = state["weight"].shape
    head = torch.nn.Linear(in_features, out_features, bias="bias" in state)
    head.load_state_dict(state)
    return head.to(device=device, dtype=dtype).eval()


class BgeM3Embedder(SentenceEncoder):
    family = "bge-m3"
    outputs = frozenset(OUTPUTS)

    def __init__(
        self,
        model_id: str,
        model: Any,
        tokenizer: Any,
        layout: EncoderLayout,
        options: LoadOptions,
        sparse_head: Any,
        colbert_head: Any,
    ) -> None:
        super().__init__(model_id, model, tokenizer, layout, options)
        self.sparse_head = sparse_head
        self.colbert_head = colbert_head
        self.normalized = True
        self.multivector_dimension = int(colbert_head.out_features)
        self.unused_ids = frozenset(
            i
            for i in (
                tokenizer.cls_token_id,
                tokenizer.eos_token_id,
                tokenizer.pad_token_id,
                tokenizer.unk_token_id,
            )
            if i is not None
        )

    @classmethod
    def runs_in(cls, requested: str, device: str) -> str:
        """As a sentence encoder, but never int8 (the heads read the torch model's states)."""
        if requested == "int8":
            return super(SentenceEncoder, cls).runs_in(requested, device)
        return super().runs_in(requested, device)

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> BgeM3Embedder:
        from dataclasses import replace

        assert source.path is not None and source.info is not None
        layout = replace(EncoderLayout.read(source.info), pooling="cls", normalize=True)
        dtype = cls.runs_in(options.dtype, options.device)
        model = cls.load_weights(source.path, replace(options, dtype=dtype))  # type: ignore[arg-type]
        weights_dtype = next(model.parameters()).dtype
        heads = [
            load_head(source.path / name, options.device, weights_dtype)
            for name in (SPARSE_HEAD, COLBERT_HEAD)
        ]
        tokenizer = cls.load_tokenizer(source.path)
        return cls(source.model_id, model, tokenizer, layout, options, *heads)

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return list(self.tokenizer.convert_ids_to_tokens([int(i) for i in ids]))

    def encode_outputs(
        self,
        inputs: Sequence[Input],
        outputs: frozenset[str],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> MultiEncodeOutput:
        """The outputs asked for, from one pass per batch (batches planned by token budget)."""
        import torch

        input_ids, truncated = self.token_ids(inputs, task, instruction)
        count = len(input_ids)
        dense = np.empty((count, self.dimension), np.float32) if "dense" in outputs else None
        sparse: dict[int, SparseEmbedding] = {}
        multi: dict[int, np.ndarray] = {}
        for batch in plan_batches(
            [len(ids) for ids in input_ids],
            token_budget=self.options.token_budget,
            max_batch_size=self.options.max_batch_size,
        ):
            rows = [input_ids[i] for i in batch]
            with torch.inference_mode():
                heads = self._heads(rows, outputs)
            if dense is not None:
                dense[batch] = heads["dense"]
            for position, index in enumerate(batch):
                if "sparse" in heads:
                    sparse[index] = self._sparse_row(rows[position], heads["sparse"][position])
                if "multivector" in heads:
                    multi[index] = heads["multivector"][position][: len(rows[position]) - 1]
            if progress is not None:
                progress(len(batch))
        order = range(count)
        return MultiEncodeOutput(
            dense,
            [sparse[i] for i in order] if "sparse" in outputs else None,
            [multi[i] for i in order] if "multivector" in outputs else None,
            truncated,
            [len(ids) for ids in input_ids],
        )

    def _heads(self, rows: Sequence[list[int]], outputs: frozenset[str]) -> dict[str, np.ndarray]:
        """One padded batch through the encoder and the heads asked for."""
        import torch

        hidden, mask = self.hidden_states(rows)
        found: dict[str, np.ndarray] = {}
        if "dense" in outputs:
            cls_states = torch.nn.functional.normalize(hidden[:, 0].float(), dim=-1)
            found["dense"] = cls_states.cpu().numpy()
        if "sparse" in outputs:
            weights = torch.relu(self.sparse_head(hidden)).squeeze(-1)
            found["sparse"] = weights.float().cpu().numpy()
        if "multivector" in outputs:
            vectors = self.colbert_head(hidden[:, 1:]) * mask[:, 1:, None].to(hidden.dtype)
            found["multivector"] = (
                torch.nn.functional.normalize(vectors.float(), dim=-1).cpu().numpy()
            )
        return found

    def _sparse_row(self, ids: list[int], weights: np.ndarray) -> SparseEmbedding:
        """Per token id the largest positive weight, the unused ids left out."""
        token_ids = np.asarray(ids, dtype=np.int64)
        row = weights[: len(ids)]
        keep = (row > 0) & ~np.isin(token_ids, list(self.unused_ids))
        unique, inverse = np.unique(token_ids[keep], return_inverse=True)
        values = np.zeros(len(unique), dtype=np.float32)
        np.maximum.at(values, inverse, row[keep].astype(np.float32))
        return SparseEmbedding(unique.astype(np.int64), values)


FAMILY = Family(
    name="bge-m3",
    kind="embedder",
    modalities=frozenset({"text"}),
    matches=_matches,
    loader=lambda: BgeM3Embedder,
    dimension=lambda info: int(info.config.get("hidden_size") or 0) or None,
    priority=5,
)
