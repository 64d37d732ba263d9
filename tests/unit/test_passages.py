from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tokenizer(minilm):
    return minilm.model.tokenizer


def test_short_text_is_one_passage(tokenizer) -> None:
    from omniretrieve.index.passages import passage_spans

    assert passage_spans("a short text", tokenizer, max_tokens=256) == [(0, 12)]


def test_long_text_is_covered_with_overlap(tokenizer) -> None:
    from omniretrieve.index.passages import passage_spans

    text = " ".join(f"word{i}" for i in range(1000))
    spans = passage_spans(text, tokenizer, max_tokens=128, overlap=16)
    assert len(spans) > 3
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (_, a_end), (b_start, b_end) in zip(spans, spans[1:], strict=False):
        assert b_start < a_end  # overlapping windows
        assert b_end > a_end
    for start, end in spans:
        count = len(tokenizer(text[start:end], add_special_tokens=False)["input_ids"])
        assert count <= 126
