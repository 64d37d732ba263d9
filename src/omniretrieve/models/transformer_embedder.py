"""The base of the embedding families that run a transformers model over a tokenizer.

It holds what those families share, so a family states only its prompt and its pooling: the
constructor fields, loading (tokenizer and weights, never the checkpoint's own code), token ids
with truncation detection, token counting, character offsets of tokens (for passage
splitting), and the token-budget batch loop that pads each batch and pools it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.models.base import EmbeddingModel, LoadOptions, ProgressCallback
from omniretrieve.runtime.batching import plan_batches
from omniretrieve.runtime.torch_utils import load_pretrained

PIECE_CHARS = 100_000
"""Longer texts are tokenised piece by piece (cut at whitespace) for their offsets, so the
tokenizer's per-token objects for a whole book never sit in memory at once."""
WHITESPACE = re.compile(r"\s")

Pooler = Callable[[Any, Any], Any]
"""``pool(last_hidden_state, attention_mask)`` -> one tensor row per input."""


class TransformerEmbedder(EmbeddingModel):
    def __init__(
        self,
        model_id: str,
        model: Any,
        tokenizer: Any,
        options: LoadOptions,
        *,
        dimension: int,
        max_length: int,
    ) -> None:
        self.model_id = model_id
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.dimension = dimension
        self.max_length = max_length
        self.dtype = self.runs_in(options.dtype, options.device)

    # -- loading ------------------------------------------------------------------------
    @staticmethod
    def load_tokenizer(
        path: Path, *, padding_side: str | None = None, pad_with_eos: bool = False
    ) -> Any:
        """The checkpoint's tokenizer through the standard classes (no remote code)."""
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        if pad_with_eos and tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        if padding_side is not None:
            tokenizer.padding_side = padding_side
        return tokenizer

    @staticmethod
    def load_weights(path: Path, options: LoadOptions, *, require_all: bool = False) -> Any:
        """The bare transformers model, on the asked device and dtype, in eval mode."""
        from transformers import AutoModel

        return load_pretrained(
            AutoModel, path, options.device, options.dtype, require_all=require_all
        )

    # -- tokens -------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Token ids cut at ``max_length`` and, per text, whether anything was cut."""
        full = self.tokenizer(list(texts), truncation=False)["input_ids"]
        cut = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        return cut["input_ids"], [len(ids) > self.max_length for ids in full]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        return [len(row) for row in ids["input_ids"]]

    def token_offsets(self, text: str) -> Iterator[tuple[int, int]]:
        """Character spans of ``text``'s tokens (empty ones left out), no special tokens,
        tokenised in pieces of at most :data:`PIECE_CHARS` characters cut at whitespace (where
        word-piece and BPE tokenizers split anyway)."""
        start = 0
        while start < len(text):
            end = min(len(text), start + PIECE_CHARS)
            if end < len(text):
                cut = _last_whitespace(text, start, end)
                end = cut if cut > start else end
            encoded = self.tokenizer(
                text[start:end],
                add_special_tokens=False,
                return_offsets_mapping=True,
                truncation=False,
                verbose=False,
            )
            for a, b in encoded["offset_mapping"]:
                if b > a:
                    yield (start + a, start + b)
            start = end

    # -- forward ------------------------------------------------------------------------
    def encode_token_batches(
        self,
        input_ids: Sequence[list[int]],
        pool: Pooler,
        progress: ProgressCallback | None = None,
    ) -> np.ndarray:
        """Token ids -> pooled vectors: batches planned by token budget, padded per batch as
        the tokenizer pads, ``pool`` applied per batch, input order kept."""
        import torch

        options = self.options
        vectors = np.empty((len(input_ids), self.dimension), dtype=np.float32)
        for batch in plan_batches(
            [len(ids) for ids in input_ids],
            token_budget=options.token_budget,
            max_batch_size=options.max_batch_size,
        ):
            with torch.inference_mode():
                pooled = self.pooled_tensors([input_ids[i] for i in batch], pool)
                vectors[batch] = pooled.float().cpu().numpy()
            if progress is not None:
                progress(len(batch))
        return vectors

    def pooled_tensors(self, input_ids: Sequence[list[int]], pool: Pooler) -> Any:
        """One batch, padded as the tokenizer pads, through the model and ``pool`` (with
        gradients unless the caller turns them off)."""
        return pool(*self.hidden_states(input_ids))

    def hidden_states(self, input_ids: Sequence[list[int]]) -> tuple[Any, Any]:
        """One batch, padded as the tokenizer pads, through the model: its last hidden states
        and the attention mask, on the model's device."""
        padded = self.tokenizer.pad(
            {"input_ids": list(input_ids)}, padding=True, return_tensors="pt"
        )
        ids = padded["input_ids"].to(self.options.device)
        mask = padded["attention_mask"].to(self.options.device)
        return self.model(input_ids=ids, attention_mask=mask).last_hidden_state, mask


def _last_whitespace(text: str, start: int, end: int) -> int:
    """The position of the last whitespace in ``text[start:end]`` (``start`` when none)."""
    for position in range(end - 1, start, -1):
        if WHITESPACE.match(text, position):
            return position
    return start
