"""A tiny random Qwen3-Reranker-shaped checkpoint in its on-disk layout: config.json with
``architectures: ["Qwen3ForCausalLM"]``, model.safetensors, a Qwen2-format tokenizer (its
chat markers special, ``yes`` and ``no`` single tokens) and no sentence-transformers files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.builders.tiny_qwen2 import train_tokenizer


def tiny_decoder(tokenizer: Any, max_positions: int) -> dict[str, Any]:
    """The size and special tokens both tiny causal LMs share."""
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "max_position_embeddings": max_positions,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }


def build_tiny_qwen3_reranker(target: Path, *, seed: int = 0, max_positions: int = 512) -> Path:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(["<think>", "</think>"])
    tokenizer.add_tokens(["yes", "no"])  # whole words in the real vocabulary too
    tokenizer.save_pretrained(target)
    torch.manual_seed(seed)
    config = Qwen3Config(
        **tiny_decoder(tokenizer, max_positions),
        bos_token_id=tokenizer.eos_token_id,
        initializer_range=0.5,
        tie_word_embeddings=True,
        architectures=["Qwen3ForCausalLM"],
    )
    Qwen3ForCausalLM(config).eval().save_pretrained(target)
    saved = json.loads((target / "config.json").read_text())
    assert saved["architectures"] == ["Qwen3ForCausalLM"]
    return target


def build_tiny_gemma_reranker(target: Path, *, seed: int = 0, max_positions: int = 512) -> Path:
    """bge-reranker-v2-gemma's layout: ``Gemma2ForCausalLM``, a tokenizer with a bos token,
    ``Yes`` a single token, padding on the left, no sentence-transformers files."""
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(["<bos>"])
    tokenizer.bos_token = "<bos>"
    tokenizer.add_tokens(["Yes", "No"])
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(target)
    saved = target / "tokenizer_config.json"  # saved as the published one: left padding
    settings = json.loads(saved.read_text())
    saved.write_text(json.dumps({**settings, "padding_side": "left"}, indent=2))
    torch.manual_seed(seed)
    config = Gemma2Config(
        **tiny_decoder(tokenizer, max_positions),
        bos_token_id=tokenizer.bos_token_id,
        initializer_range=0.5,
        architectures=["Gemma2ForCausalLM"],
    )
    Gemma2ForCausalLM(config).eval().save_pretrained(target)
    return target
