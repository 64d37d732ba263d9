"""A tiny random BERT cross-encoder (``BertForSequenceClassification``, one logit), saved as
ms-marco-MiniLM and bge-reranker checkpoints are: config, safetensors, tokenizer files."""

from __future__ import annotations

from pathlib import Path

from tests.builders.tiny_bert import bert_tokenizer


def build_tiny_cross_encoder(target: Path, *, seed: int = 0, max_positions: int = 64) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = bert_tokenizer()
    vocab = tokenizer.get_vocab()
    tokenizer.save_pretrained(target)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        num_labels=1,
        initializer_range=0.5,  # random but far from constant scores
        architectures=["BertForSequenceClassification"],
    )
    BertForSequenceClassification(config).eval().save_pretrained(target)
    return target
