from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def model(minilm):
    return minilm.model


@pytest.fixture(scope="module")
def tokenizer(model):
    return model.tokenizer


def test_short_text_is_one_passage(model) -> None:
    from omniretrieve.index.passages import passage_spans

    assert passage_spans("a short text", model.token_offsets, max_tokens=256) == [(0, 12)]


def test_long_text_is_covered_with_overlap(model, tokenizer) -> None:
    from omniretrieve.index.passages import passage_spans

    text = " ".join(f"word{i}" for i in range(1000))
    spans = passage_spans(text, model.token_offsets, max_tokens=128, overlap=16)
    assert len(spans) > 3
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (_, a_end), (b_start, b_end) in zip(spans, spans[1:], strict=False):
        assert b_start < a_end  # overlapping windows
        assert b_end > a_end
    for start, end in spans:
        count = len(tokenizer(text[start:end], add_special_tokens=False)["input_ids"])
        assert count <= 126


def _function(name: str, lines: int) -> str:
    body = "".join(f"    value_{i} = compute_{name}({i}) + offset\n" for i in range(lines))
    return f"def {name}(offset):\n{body}    return value_0\n\n\n"


def test_python_is_split_at_function_boundaries(model) -> None:
    from omniretrieve.index.code_units import definition_starts, language_of
    from omniretrieve.index.passages import passage_spans

    source = (
        "import os\n\n\n"
        + _function("alpha", 6)
        + "@decorator\n"
        + _function("beta", 6)
        + "class Gamma:\n    def method(self):\n        return 1\n\n\n"
        + _function("delta", 6)
    )
    language = language_of({"suffix": ".py"})
    assert language == "python"
    starts = definition_starts(source, language)
    assert [source[s : s + 10] for s in starts] == [
        "def alpha(",
        "@decorator",
        "class Gamm",
        "def delta(",
    ]
    spans = passage_spans(source, model.token_offsets, max_tokens=120, overlap=0, boundaries=starts)
    assert len(spans) > 1
    for start, end in spans:
        piece = source[start:end]
        # every passage starts at a definition (or the file's start) and ends with a whole unit
        assert start == 0 or start in starts, piece[:30]
        assert piece.rstrip().endswith(("value_0", "return 1")), piece[-40:]
    covered = "".join(source[a:b] for a, b in spans)
    assert all(f"def {n}(" in covered for n in ("alpha", "beta", "delta"))
    # without boundaries the same text is cut mid-function
    plain = passage_spans(source, model.token_offsets, max_tokens=120, overlap=0)
    assert any(not source[a:b].rstrip().endswith(("value_0", "return 1")) for a, b in plain)


def test_a_function_longer_than_the_window_is_still_cut_inside(model, tokenizer) -> None:
    from omniretrieve.index.code_units import definition_starts
    from omniretrieve.index.passages import passage_spans

    source = _function("small", 2) + _function("huge", 80) + _function("tail", 2)
    starts = definition_starts(source, "python")
    spans = passage_spans(
        source, model.token_offsets, max_tokens=128, overlap=16, boundaries=starts
    )
    assert spans[0][0] == 0 and spans[-1][1] == len(source.rstrip())
    for start, end in spans:
        assert len(tokenizer(source[start:end], add_special_tokens=False)["input_ids"]) <= 126


@pytest.mark.parametrize(
    ("language", "source", "expected"),
    [
        ("go", "package x\n\nfunc A() {}\n\ntype T struct {}\n", ["func A()", "type T s"]),
        ("rust", "use x;\n\npub fn a() {}\nimpl T {}\n", ["pub fn a", "impl T {"]),
        (
            "javascript",
            "'use strict';\nexport function a() {}\nconst b = (x) => x;\n",
            ["export f", "const b "],
        ),  # fmt: skip
        ("ruby", "require 'x'\ndef a\nend\nclass B\nend\n", ["def a\nen", "class B\n"]),
        ("python", "x = (\n", []),  # a syntax error falls back to line patterns
        (None, "def a():\n    pass\n", []),
    ],
)
def test_other_languages(language: str | None, source: str, expected: list[str]) -> None:
    from omniretrieve.index.code_units import definition_starts

    starts = definition_starts(source, language)
    assert [source[s : s + 8] for s in starts] == expected


def test_long_texts_are_tokenised_in_pieces_with_the_same_spans(model, monkeypatch) -> None:
    """A text longer than one tokenisation piece gives the spans of tokenising it whole (the
    pieces are cut at whitespace), so long files pass in bounded memory."""
    from omniretrieve.index.passages import passage_spans
    from omniretrieve.models import transformer_embedder

    text = "\n".join(f"line {i}: the quick brown fox jumps over dog {i * 7}" for i in range(3000))
    whole = passage_spans(text, model.token_offsets, max_tokens=128, overlap=16)
    calls: list[int] = []
    tokenizer = model.tokenizer

    class Counting:
        def __call__(self, piece, **kwargs):
            calls.append(len(piece))
            return tokenizer(piece, **kwargs)

    monkeypatch.setattr(transformer_embedder, "PIECE_CHARS", 10_000)
    monkeypatch.setattr(model, "tokenizer", Counting())
    pieced = passage_spans(text, model.token_offsets, max_tokens=128, overlap=16)
    assert pieced == whole
    assert len(calls) > 10 and max(calls) <= 10_000


def test_every_embedding_family_gives_token_offsets() -> None:
    """Passage splitting asks the model, not a Hugging Face tokenizer: no family may lack it."""
    from omniretrieve.models.base import EmbeddingModel
    from omniretrieve.models.registry import Registry

    for family in Registry.from_modules().families.values():
        if family.kind == "embedder":
            model_class = family.loader()
            assert issubclass(model_class, EmbeddingModel)
            assert "token_offsets" not in model_class.__abstractmethods__, family.name
