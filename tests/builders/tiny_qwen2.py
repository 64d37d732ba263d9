"""Tiny byte-level BPE tokenizers in Qwen2's format, and a tiny random ``Qwen2Model``
checkpoint saved as BGE-Code-v1 is (config with ``architectures: ["Qwen2Model"]``,
model.safetensors, tokenizer.json + tokenizer_config.json)."""

from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "def add(a, b): return a + b",
    "def sort_list(items): return sorted(items)",
    "SELECT name FROM users WHERE age > 30",
    "cats eat fish and dogs chew bones",
    "<instruct>Given a question in natural language, retrieve code that answers it.\n<query>",
    "how to sort a list in python",
    "**Document**:\n**Query**:\n",
]
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def train_tokenizer(extra_special: list[str] | None = None, vocab_size: int = 400):
    """A ``Qwen2Tokenizer`` over a byte-level BPE trained here (no download)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    specials = SPECIAL_TOKENS + list(extra_special or [])
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    backend.train_from_iterator(CORPUS * 20, trainer)
    return Qwen2TokenizerFast(
        tokenizer_object=backend,
        pad_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        additional_special_tokens=list(extra_special or []),
    )


def build_tiny_qwen2_embedder(target: Path, *, seed: int = 0, padding_side: str = "right") -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2Model

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    tokenizer.padding_side = padding_side
    tokenizer.save_pretrained(target)
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        initializer_range=0.2,
        architectures=["Qwen2Model"],
    )
    Qwen2Model(config).eval().save_pretrained(target)
    saved = json.loads((target / "config.json").read_text())
    assert saved["architectures"] == ["Qwen2Model"]
    return target
