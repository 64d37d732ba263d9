"""Token-budget batching: sort by length, cut batches by padded token count, restore order.

Sorting makes each batch hold texts of similar length, so padding is small; the budget bounds
``batch_size * longest_sequence`` so that 10,000 short texts go in large batches and long texts
in small ones, with memory bounded in both cases. A text less than half as long as its batch's
longest starts a new batch even when it would fit, so short texts never ride (and pay for) a
long batch's padding.
"""

from __future__ import annotations

from collections.abc import Sequence

DEFAULT_TOKEN_BUDGET = 4096
DEFAULT_MAX_BATCH_SIZE = 128


def plan_batches(
    lengths: Sequence[int],
    *,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
) -> list[list[int]]:
    """Group item indices into batches, longest first.

    Each batch's padded size ``len(batch) * max(length in batch)`` stays within
    ``token_budget`` (a single item longer than the budget gets a batch of its own), holds at
    most ``max_batch_size`` items, and no item in it is shorter than half its longest. Every
    index appears exactly once.
    """
    if token_budget < 1 or max_batch_size < 1:
        raise ValueError("token_budget and max_batch_size must be positive")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        length = max(int(lengths[index]), 1)
        padded_if_added = max(longest, length) * (len(current) + 1)
        too_short = length * 2 < longest
        if current and (
            padded_if_added > token_budget or len(current) >= max_batch_size or too_short
        ):
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, length)
    if current:
        batches.append(current)
    return batches


def padding_ratio(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Share of padded positions that are padding (0 = none wasted)."""
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
    real = sum(lengths[i] for b in batches for i in b)
    return 0.0 if padded == 0 else 1.0 - real / padded
