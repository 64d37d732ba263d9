from __future__ import annotations

import random

import pytest

from omniretrieve.runtime.batching import padding_ratio, plan_batches


def test_every_index_once_and_budget_respected() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(1, 300) for _ in range(1000)]
    batches = plan_batches(lengths, token_budget=4096, max_batch_size=64)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    for batch in batches:
        assert len(batch) <= 64
        longest = max(lengths[i] for i in batch)
        assert len(batch) * longest <= 4096
        assert all(lengths[i] * 2 >= longest for i in batch)


def test_many_short_and_few_long_texts() -> None:
    lengths = [8] * 10_000 + [512] * 10
    batches = plan_batches(lengths, token_budget=8192, max_batch_size=256)
    long_batches = [b for b in batches if any(lengths[i] == 512 for i in b)]
    # the ten long texts go together (10 * 512 fits) and never pad a batch of short ones
    assert len(long_batches) == 1 and len(long_batches[0]) == 10
    assert padding_ratio(lengths, batches) == 0.0
    # short texts fill large batches instead of one item at a time
    assert len(batches) == 1 + 10_000 // 256 + (1 if 10_000 % 256 else 0)


def test_single_item_over_budget_gets_its_own_batch() -> None:
    batches = plan_batches([10_000, 5, 5], token_budget=100)
    assert [0] in batches
    assert sorted(i for b in batches for i in b) == [0, 1, 2]


def test_sorting_reduces_padding_against_arrival_order() -> None:
    rng = random.Random(1)
    lengths = [rng.choice([5, 250]) for _ in range(512)]
    sorted_batches = plan_batches(lengths, token_budget=8192, max_batch_size=32)
    arrival = [list(range(i, min(i + 32, 512))) for i in range(0, 512, 32)]
    assert padding_ratio(lengths, sorted_batches) < 0.05 < padding_ratio(lengths, arrival)


def test_invalid_budget() -> None:
    with pytest.raises(ValueError):
        plan_batches([1, 2], token_budget=0)


def test_empty() -> None:
    assert plan_batches([]) == []
