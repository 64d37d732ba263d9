"""Splitting long documents into passages that fit an embedder, with overlap.

The split is token-aware: the embedder gives its tokens' character offsets
(``EmbeddingModel.token_offsets``), and windows of
``max_tokens`` word pieces (minus the special tokens) advance by ``max_tokens - overlap``, so
nothing after the model's limit is invisible. Each passage is a (start, end) character span of
the original text. Given ``boundaries`` (e.g. where functions start in code), passages are
packed from whole units between boundaries, and only a unit longer than the window is cut
inside.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence

TokenOffsets = Callable[[str], Iterable[tuple[int, int]]]
"""A text -> the character spans of its tokens, in order, special tokens left out."""


def passage_spans(
    text: str,
    token_offsets: TokenOffsets,
    *,
    max_tokens: int,
    overlap: int = 32,
    special_tokens: int = 2,
    boundaries: Sequence[int] = (),
) -> list[tuple[int, int]]:
    """Character spans of the passages of ``text`` (one span covering all of it if it fits)."""
    window = max(8, max_tokens - special_tokens)
    overlap = min(max(0, overlap), window // 2)
    offsets = list(token_offsets(text))
    if len(offsets) <= window:
        return [(0, len(text))]
    if boundaries:
        return _unit_spans(text, offsets, window, overlap, boundaries)
    return _window_spans(offsets, window, overlap)


def _window_spans(
    offsets: Sequence[tuple[int, int]], window: int, overlap: int
) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    step = window - overlap
    for first in range(0, len(offsets), step):
        last = min(first + window, len(offsets)) - 1
        spans.append((offsets[first][0], offsets[last][1]))
        if last == len(offsets) - 1:
            break
    return spans


def _unit_spans(
    text: str,
    offsets: Sequence[tuple[int, int]],
    window: int,
    overlap: int,
    boundaries: Sequence[int],
) -> list[tuple[int, int]]:
    """Greedy packing of whole units (text between boundaries) into windows of tokens."""
    starts = [o[0] for o in offsets]
    cuts = [0, *sorted(b for b in set(boundaries) if 0 < b < len(text)), len(text)]
    units = []  # (first token, end token) per unit
    for begin, end in zip(cuts, cuts[1:], strict=False):
        first, last = bisect_left(starts, begin), bisect_left(starts, end)
        if last > first:
            units.append((first, last))
    spans: list[tuple[int, int]] = []
    group_first: int | None = None
    group_last = 0
    for first, last in units:
        if last - first > window:  # one unit is longer than a window: cut inside it
            if group_first is not None:
                spans.append((offsets[group_first][0], offsets[group_last - 1][1]))
                group_first = None
            inner = _window_spans(offsets[first:last], window, overlap)
            spans.extend(inner)
            continue
        if group_first is not None and last - group_first > window:
            spans.append((offsets[group_first][0], offsets[group_last - 1][1]))
            group_first = None
        if group_first is None:
            group_first = first
        group_last = last
    if group_first is not None:
        spans.append((offsets[group_first][0], offsets[group_last - 1][1]))
    return spans
