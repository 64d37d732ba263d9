"""Query terms found in a text as BM25 analyses it."""

from __future__ import annotations

from omniretrieve.text.highlight import term_spans


def test_words_are_matched_by_their_stems_and_stopwords_are_not() -> None:
    text = "Cats eat fish and mice. The cat was eating."
    spans = term_spans(text, "what do the cats eat", "en")
    assert [text[a:b] for a, b in spans] == ["Cats", "eat", "cat", "eating"]


def test_other_languages_use_their_own_analysis() -> None:
    text = "Die Katzen fressen Fisch."
    assert [text[a:b] for a, b in term_spans(text, "katze", "de")] == ["Katzen"]
    chinese = "猫喜欢吃鱼"
    assert term_spans(chinese, "吃鱼", "zh")  # unsegmented scripts match as substrings
    assert term_spans("anything", "   ", "en") == []
