"""Winoground scoring (Thrush et al., 2022): two captions, two images, one score function.

For an example with captions c0, c1 and images i0, i1 (c0 describes i0, c1 describes i1):

- text score: for each image, its own caption scores higher than the other caption;
- image score: for each caption, its own image scores higher than the other image;
- group score: both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from omniretrieve.eval.datasets import WinogroundExample

Scorer = Callable[[str, str], float]
"""(caption, image path) -> similarity; higher is a better match."""


@dataclass(frozen=True)
class WinogroundResult:
    text: float
    image: float
    group: float
    per_example: dict[str, dict[str, float]]
    """Example id -> {"text", "image", "group"} as 0.0 or 1.0."""


def example_scores(matrix: Sequence[Sequence[float]]) -> dict[str, float]:
    """``matrix[c][i]`` is the score of caption c with image i."""
    (c0_i0, c0_i1), (c1_i0, c1_i1) = matrix
    text = c0_i0 > c1_i0 and c1_i1 > c0_i1
    image = c0_i0 > c0_i1 and c1_i1 > c1_i0
    return {"text": float(text), "image": float(image), "group": float(text and image)}


def winoground_scores(examples: Sequence[WinogroundExample], score: Scorer) -> WinogroundResult:
    if not examples:
        raise ValueError("no Winoground examples")
    per_example = {}
    for example in examples:
        matrix = [
            [score(caption, image) for image in example.images] for caption in example.captions
        ]
        per_example[example.example_id] = example_scores(matrix)
    count = len(per_example)
    return WinogroundResult(
        text=sum(v["text"] for v in per_example.values()) / count,
        image=sum(v["image"] for v in per_example.values()) / count,
        group=sum(v["group"] for v in per_example.values()) / count,
        per_example=per_example,
    )
