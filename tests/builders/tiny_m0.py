"""A tiny random checkpoint of jina-reranker-m0's architecture in its on-disk layout:
config.json (``architectures: ["JinaVLForRanking"]``, ``model_type: qwen2_vl``), one
model.safetensors with the tensor names the real checkpoint has (``model.layers.*``,
``visual.*``, ``score.0.*``, ``score.2.*``, no ``lm_head``), a Qwen2 tokenizer with the vision
tokens, and a Qwen2-VL image processor config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.builders.tiny_qwen2 import train_tokenizer

VISION_TOKENS = ["<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>"]


def tiny_qwen2_vl_config(tokenizer: Any, **settings: Any) -> Any:
    """A two-layer Qwen2-VL configuration over ``tokenizer`` (which holds
    :data:`VISION_TOKENS`), with ``settings`` added."""
    from transformers import Qwen2VLConfig

    start, pad, end, video = tokenizer.convert_tokens_to_ids(VISION_TOKENS)
    return Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 1024,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [2, 1, 1],
            },
            "tie_word_embeddings": False,
            "initializer_range": 0.2,
        },
        vision_config={
            "depth": 2,
            "embed_dim": 16,
            "hidden_size": 32,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        vision_start_token_id=start,
        image_token_id=pad,
        vision_end_token_id=end,
        video_token_id=video,
        **settings,
    )


def build_tiny_m0(target: Path, *, seed: int = 0) -> Path:
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen2VLImageProcessor

    from omniretrieve.models.vlm_reranker import ranking_model_class

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(VISION_TOKENS)
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(target)
    Qwen2VLImageProcessor(min_pixels=3136, max_pixels=602112).save_pretrained(target)
    config = tiny_qwen2_vl_config(
        tokenizer,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        architectures=["JinaVLForRanking"],
    )
    torch.manual_seed(seed)
    model = ranking_model_class()(config).eval()
    for layer in model.score:  # a score head whose output varies visibly between pairs
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=0.5)
    model.save_pretrained(target)
    # the real checkpoint was saved by transformers 4.x: its tensor names predate 5.x's
    tensors = {}
    from safetensors.torch import load_file

    for name, tensor in load_file(str(target / "model.safetensors")).items():
        if name.startswith("model.language_model."):
            name = "model." + name.removeprefix("model.language_model.")
        elif name.startswith("model.visual."):
            name = "visual." + name.removeprefix("model.visual.")
        tensors[name] = tensor.contiguous()
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    saved = json.loads((target / "config.json").read_text())
    assert saved["architectures"] == ["JinaVLForRanking"] and saved["model_type"] == "qwen2_vl"
    return target
