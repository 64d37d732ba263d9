"""Splitting long documents into passages that fit an embedder, with overlap.

The split is token-aware: the embedder's own tokenizer gives character offsets, and windows of
``max_tokens`` word pieces (minus the special tokens) advance by ``max_tokens - overlap``, so
nothing after the model's limit is invisible. Each passage is a (start, end) character span of
the original text.
"""

from __future__ import annotations

from typing import Any


def passage_spans(
    text: str, tokenizer: Any, *, max_tokens: int, overlap: int = 32, special_tokens: int = 2
) -> list[tuple[int, int]]:
    """Character spans of the passages of ``text`` (one span covering all of it if it fits)."""
    window = max(8, max_tokens - special_tokens)
    overlap = min(max(0, overlap), window // 2)
    encoded = tokenizer(
        text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
    )
    offsets = [span for span in encoded["offset_mapping"] if span[1] > span[0]]
    if len(offsets) <= window:
        return [(0, len(text))]
    spans: list[tuple[int, int]] = []
    step = window - overlap
    for first in range(0, len(offsets), step):
        last = min(first + window, len(offsets)) - 1
        spans.append((offsets[first][0], offsets[last][1]))
        if last == len(offsets) - 1:
            break
    return spans
