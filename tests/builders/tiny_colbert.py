"""A tiny random ColBERTv2 checkpoint in the layout stanford-futuredata/ColBERT saves
(``HF_ColBERT.save_pretrained`` and ``ColBERTConfig.save_for_checkpoint``): config.json with
``architectures: ["HF_ColBERT"]`` and ``model_type: bert``, one model.safetensors holding the
encoder under ``bert.`` and the projection as ``linear.weight``, the tokenizer (with the
``[unused0]`` / ``[unused1]`` markers and ``[MASK]``), and ``artifact.metadata``."""

from __future__ import annotations

import json
import string
from pathlib import Path

from tests.builders.tiny_bert import WORDS

SETTINGS = {
    "query_token_id": "[unused0]",
    "doc_token_id": "[unused1]",
    "query_token": "[Q]",
    "doc_token": "[D]",
    "query_maxlen": 12,
    "doc_maxlen": 24,
    "dim": 8,
    "mask_punctuation": True,
    "attend_to_mask_tokens": False,
    "similarity": "cosine",
}


def build_tiny_colbert(target: Path, *, seed: int = 0, nested: bool = True) -> Path:
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, BertModel, BertTokenizerFast

    target.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    vocab += list(string.ascii_lowercase) + [f"##{c}" for c in string.ascii_lowercase]
    vocab += list(string.digits) + list(string.punctuation)
    tokenizer = BertTokenizerFast(
        vocab={token: i for i, token in enumerate(dict.fromkeys(vocab))}, do_lower_case=True
    )
    tokenizer.save_pretrained(target)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        architectures=["HF_ColBERT"],
    )
    bert = BertModel(config).eval()
    linear = torch.nn.Linear(32, SETTINGS["dim"], bias=False)
    tensors = {f"bert.{k}": v.contiguous() for k, v in bert.state_dict().items()}
    tensors["linear.weight"] = linear.weight.detach().contiguous()
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    config.save_pretrained(target)
    saved = json.loads((target / "config.json").read_text())
    assert saved["architectures"] == ["HF_ColBERT"] and saved["model_type"] == "bert"
    metadata = {"config": SETTINGS} if nested else SETTINGS
    (target / "artifact.metadata").write_text(json.dumps(metadata, indent=2))
    return target
