"""Tiny random checkpoints of BGE-VL-Screenshot's architecture (Qwen2.5-VL) and BGE-VL-v1.5's
(LLaVA-NeXT) in their on-disk layouts, tensor names as transformers 4.x saved them, with a chat
template in tokenizer_config.json (a short one written here, in the style of each family's)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.builders.tiny_qwen2 import train_tokenizer

QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
LLAVA_TEMPLATE = (
    "{% for message in messages %}[INST] "
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %} [/INST]{% endfor %}"
)
TEXT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
    "initializer_range": 0.2,
    "tie_word_embeddings": False,
}


def _rename(target: Path, renames: list[tuple[str, str]]) -> None:
    from safetensors.torch import load_file, save_file

    tensors = {}
    for name, tensor in load_file(str(target / "model.safetensors")).items():
        for old, new in renames:
            if name.startswith(old):
                name = new + name.removeprefix(old)
                break
        tensors[name] = tensor.contiguous()
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})


def build_tiny_qwen25_vl(target: Path, *, seed: int = 0, chat_template: bool = True) -> Path:
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessor,
    )

    target.mkdir(parents=True, exist_ok=True)
    tokens = ["<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>"]
    tokenizer = train_tokenizer(tokens)
    if chat_template:
        tokenizer.chat_template = QWEN_TEMPLATE
    tokenizer.save_pretrained(target)
    Qwen2VLImageProcessor().save_pretrained(target)
    start, pad, end, video = tokenizer.convert_tokens_to_ids(tokens)
    text = {
        **TEXT,
        "vocab_size": len(tokenizer),
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": [2, 1, 1],
        },
    }
    config = Qwen2_5_VLConfig(
        text_config=text,
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 32,
            "out_hidden_size": 32,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "fullatt_block_indexes": [1],
        },
        vision_start_token_id=start,
        image_token_id=pad,
        vision_end_token_id=end,
        video_token_id=video,
        tie_word_embeddings=False,
        architectures=["Qwen2_5_VLForConditionalGeneration"],
    )
    torch.manual_seed(seed)
    Qwen2_5_VLForConditionalGeneration(config).eval().save_pretrained(target)
    _rename(target, [("model.language_model.", "model."), ("model.visual.", "visual.")])
    return target


def build_tiny_llava_next(
    target: Path, *, seed: int = 0, architecture: str = "LlavaNextForConditionalGeneration"
) -> Path:
    """LLaVA-NeXT weights; ``architecture="LLaVANextForEmbedding"`` saves them as BGE-VL-v1.5's
    checkpoints name themselves (a remote-code class over the same weights)."""
    import torch
    from transformers import (
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(["<image>"])
    tokenizer.chat_template = LLAVA_TEMPLATE
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": 28},
        crop_size={"height": 28, "width": 28},
        image_grid_pinpoints=[[28, 56], [56, 28], [56, 56]],
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        image_token="<image>",
        num_additional_image_tokens=1,  # the CLIP tower's class token, as real processors say
        chat_template=LLAVA_TEMPLATE,
    )
    processor.save_pretrained(target)
    config = LlavaNextConfig(
        text_config={**TEXT, "model_type": "qwen2", "vocab_size": len(tokenizer)},
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 28,
            "patch_size": 14,
        },
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=[[28, 56], [56, 28], [56, 56]],
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        tie_word_embeddings=False,
        architectures=["LlavaNextForConditionalGeneration"],
    )
    torch.manual_seed(seed)
    LlavaNextForConditionalGeneration(config).eval().save_pretrained(target)
    _rename(
        target,
        [
            ("model.language_model.", "language_model.model."),
            ("lm_head.", "language_model.lm_head."),
            ("model.vision_tower.", "vision_tower."),
            ("model.multi_modal_projector.", "multi_modal_projector."),
            ("model.image_newline", "image_newline"),
        ],
    )
    saved = json.loads((target / "config.json").read_text())
    if architecture != "LlavaNextForConditionalGeneration":
        saved["architectures"] = [architecture]
        saved["auto_map"] = {"AutoModel": "modeling_llava_next.LLaVANextForEmbedding"}
        (target / "config.json").write_text(json.dumps(saved, indent=2))
    return target
