"""Qwen2-VL-style inputs built without ``Qwen2VLProcessor`` (it needs torchvision, which does
not install beside torch 2.13 here): the checkpoint's image processor turns each image into
patches and a (t, h, w) grid, and each ``<|image_pad|>`` in the text is expanded to the image's
number of visual tokens, ``t * h * w / merge_size**2``, as the processor would."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

IMAGE_PAD = "<|image_pad|>"
IMAGE_PLACEHOLDER = f"<|vision_start|>{IMAGE_PAD}<|vision_end|>"
VISION_TOKENS = ("<|vision_start|>", IMAGE_PAD, "<|vision_end|>", "<|video_pad|>", "<image>")


def strip_vision_tokens(text: str) -> str:
    """A caller's text without image-slot tokens (it cannot smuggle in image positions)."""
    for token in VISION_TOKENS:
        text = text.replace(token, "")
    return text


@dataclass(frozen=True)
class VisualInput:
    """One image, preprocessed: its patches, its grid and how many tokens it takes."""

    pixel_values: Any
    """(patches, channels * temporal * patch * patch) float tensor."""
    grid_thw: Any
    """(1, 3) long tensor."""
    tokens: int


def prepare_image(processor: Any, image: Any, *, min_pixels: int, max_pixels: int) -> VisualInput:
    """Resize within [min_pixels, max_pixels] (keeping the aspect ratio, multiples of the
    patch grid) and cut into patches."""
    features = processor(
        images=[image],
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels},  # pixel counts
        return_tensors="pt",
    )
    grid = features["image_grid_thw"]
    merge = int(getattr(processor, "merge_size", 2))
    return VisualInput(features["pixel_values"], grid, int(grid.prod()) // merge**2)


def expand_image_pads(text: str, images: Sequence[VisualInput]) -> str:
    """Each ``<|image_pad|>`` (in order) repeated as many times as its image has tokens."""
    parts = text.split(IMAGE_PAD)
    if len(parts) - 1 != len(images):
        raise ValueError(f"{len(parts) - 1} image placeholders for {len(images)} images")
    expanded = [parts[0]]
    for image, rest in zip(images, parts[1:], strict=True):
        expanded.append(IMAGE_PAD * image.tokens)
        expanded.append(rest)
    return "".join(expanded)
