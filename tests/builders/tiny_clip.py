"""A tiny random CLIP checkpoint in the real layout: config.json (``CLIPModel``),
model.safetensors, a byte-level CLIP BPE tokenizer built here, preprocessor_config.json."""

from __future__ import annotations

import io
from pathlib import Path

MERGES = ["c a", "ca t</w>", "f i", "fi s", "fis h</w>", "d o", "do g</w>", "t h", "th e</w>"]


def build_tiny_clip(target: Path, *, seed: int = 0, image_size: int = 32) -> Path:
    import torch
    from tokenizers import pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    target.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char + "</w>"] = len(vocab)
    for merge in MERGES:
        vocab[merge.replace(" ", "")] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[tuple(m.split()) for m in MERGES])
    tokenizer.save_pretrained(target)
    CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    ).save_pretrained(target)
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 24,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 8,
        },
        projection_dim=16,
        architectures=["CLIPModel"],
    )
    CLIPModel(config).eval().save_pretrained(target)
    return target


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (48, 40)) -> bytes:
    """A test image: a coloured rectangle with a darker square in one corner."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, color)
    ImageDraw.Draw(image).rectangle((0, 0, 12, 12), fill=tuple(c // 3 for c in color))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def build_tiny_siglip(target: Path, *, seed: int = 0, image_size: int = 32) -> Path:
    """A tiny random ``SiglipModel``. Its tokenizer is a byte-level BPE (real SigLIP ships a
    SentencePiece model; the family only relies on padding to the trained length)."""
    import torch
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

    from tests.builders.tiny_qwen2 import train_tokenizer

    target.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer()
    tokenizer.save_pretrained(target)
    SiglipImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(target)
    torch.manual_seed(seed)
    config = SiglipConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "projection_size": 32,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.eos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 8,
        },
        architectures=["SiglipModel"],
    )
    SiglipModel(config).eval().save_pretrained(target)
    return target
