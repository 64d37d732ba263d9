"""Language detection and per-language BM25 analysis."""

from __future__ import annotations

import pytest

from omniretrieve.text.analyzers import Analyzer, tokenize_one
from omniretrieve.text.language import detect, normalise


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Wie viele Punkte gab die Verteidigung der Panthers ab?", "de"),
        ("How many points did the Panthers defense surrender?", "en"),
        ("卡罗来纳黑豹队的防守放弃了多少分？", "zh"),
        ("كم نقطة تخلى عنها دفاع البانثرز؟", "ar"),
        ("Сколько очков пропустила защита Пантер?", "ru"),
        ("แพนเทอร์เสียไปกี่คะแนน", "th"),
    ],
)
def test_detection(text: str, language: str) -> None:
    assert detect(text) == language


def test_detection_among_a_collection_languages() -> None:
    assert detect("Panthers", among=["en"]) == "en"  # one language: nothing to guess
    assert detect("die Verteidigung", among=["en", "de"]) == "de"
    assert normalise("German") == "de" and normalise("wuu") == "zh"


def test_chinese_is_segmented_not_split_on_whitespace() -> None:
    text = "卡罗来纳黑豹队的防守放弃了多少分"  # no spaces at all
    terms = tokenize_one(text, "zh")
    assert len(terms) >= 5 and text not in terms
    assert "防守" in terms and "黑豹" in terms
    assert "的" not in terms  # a Chinese stopword
    # a space inside Chinese text does not decide the terms
    assert set(tokenize_one("黑豹 队的防守", "zh")) >= {"黑豹", "防守"}


def test_german_uses_the_german_stemmer() -> None:
    import Stemmer

    german = Stemmer.Stemmer("german")
    terms = tokenize_one("Die Häuser und des Hauses Verteidigungen", "de")
    assert "die" not in terms and "und" not in terms  # German stopwords
    assert german.stemWord("häuser") in terms and german.stemWord("verteidigungen") in terms
    assert tokenize_one("Häuser", "de") != tokenize_one("Häuser", "en")


def test_japanese_and_thai_become_bigrams() -> None:
    assert tokenize_one("東京大学", "ja") == ["東京", "京大", "大学"]
    assert "แพ" in tokenize_one("แพนเทอร์", "th")


def test_auto_analyzer_uses_each_text_language() -> None:
    analyzer = Analyzer("auto")
    german, english = analyzer.tokenize(["Die Verteidigungen der Häuser", "The houses defended"])
    assert german == tokenize_one("Die Verteidigungen der Häuser", "de")
    assert english == ["hous", "defend"]
    forced = analyzer.tokenize(["The houses"], languages=["de"])[0]
    assert forced == tokenize_one("The houses", "de")
    assert Analyzer("english").language == "en"
