"""Tiny random ColQwen2 and ColPali checkpoints in their on-disk layout, built with
transformers' own classes (``ColQwen2ForRetrieval`` over a tiny Qwen2-VL, ``ColPaliForRetrieval``
over a tiny PaliGemma) and saved with their processors (``processor_config.json``, the image
processor's and the tokenizer's files), as ``save_pretrained`` writes the real ones."""

from __future__ import annotations

from pathlib import Path

from tests.builders.tiny_m0 import VISION_TOKENS, tiny_qwen2_vl_config
from tests.builders.tiny_qwen2 import train_tokenizer


def build_tiny_colqwen2(target: Path, *, seed: int = 0) -> Path:
    import torch
    from transformers import (
        ColQwen2Config,
        ColQwen2ForRetrieval,
        ColQwen2Processor,
        Qwen2VLImageProcessor,
    )

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(VISION_TOKENS)
    tokenizer.padding_side = "left"
    images = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=50176)
    ColQwen2Processor(image_processor=images, tokenizer=tokenizer).save_pretrained(target)
    backbone = tiny_qwen2_vl_config(tokenizer)
    torch.manual_seed(seed)
    config = ColQwen2Config(vlm_config=backbone, embedding_dim=16, initializer_range=0.5)
    ColQwen2ForRetrieval(config).eval().save_pretrained(target)
    return target


def build_tiny_colpali(target: Path, *, seed: int = 0) -> Path:
    import torch
    from transformers import (
        ColPaliConfig,
        ColPaliForRetrieval,
        ColPaliProcessor,
        GemmaConfig,
        PaliGemmaConfig,
        SiglipImageProcessor,
        SiglipVisionConfig,
    )

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(["<image>", "<bos>", "<pad>"])
    tokenizer.bos_token, tokenizer.pad_token = "<bos>", "<pad>"
    tokenizer.padding_side = "right"
    images = SiglipImageProcessor(size={"height": 28, "width": 28}, image_seq_length=4)
    processor = ColPaliProcessor(image_processor=images, tokenizer=tokenizer)
    tokenizer = processor.tokenizer  # the processor adds its image, location and segment tokens
    vision = SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2, image_size=28, patch_size=14)  # fmt: skip
    text = GemmaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       head_dim=8, max_position_embeddings=512,
                       pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id)  # fmt: skip
    backbone = PaliGemmaConfig(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        projection_dim=32,
    )
    processor.save_pretrained(target)
    torch.manual_seed(seed)
    config = ColPaliConfig(vlm_config=backbone, embedding_dim=16, initializer_range=0.5)
    ColPaliForRetrieval(config).eval().save_pretrained(target)
    return target
