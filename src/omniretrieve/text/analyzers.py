"""Turning text into BM25 terms, per language.

- Languages with a Snowball stemmer (PyStemmer) are lower-cased, split into words, stripped of
  stopwords (bm25s's lists, where it has one) and stemmed: German gets the German stemmer.
- Chinese is segmented into words with jieba (search mode: long words also yield their parts);
  never split on whitespace, which Chinese does not have.
- Japanese, Korean and Thai (no segmenter bundled) are indexed as overlapping character bigrams
  of their script runs, as Lucene's CJK analyzer does.
- Anything else is lower-cased and split into words, without stemming.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from omniretrieve.text.language import detect, detectable_languages, normalise

SNOWBALL = {
    "ar": "arabic", "hy": "armenian", "eu": "basque", "ca": "catalan", "cs": "czech",
    "da": "danish", "nl": "dutch", "en": "english", "eo": "esperanto", "et": "estonian",
    "fi": "finnish", "fr": "french", "de": "german", "el": "greek", "hi": "hindi",
    "hu": "hungarian", "id": "indonesian", "ga": "irish", "it": "italian", "lt": "lithuanian",
    "ne": "nepali", "no": "norwegian", "fa": "persian", "pl": "polish", "pt": "portuguese",
    "ro": "romanian", "ru": "russian", "sr": "serbian", "es": "spanish", "sv": "swedish",
    "ta": "tamil", "tr": "turkish", "yi": "yiddish",
}  # fmt: skip
STOPWORD_LISTS = {
    "en": "STOPWORDS_EN", "de": "STOPWORDS_GERMAN", "fr": "STOPWORDS_FRENCH",
    "es": "STOPWORDS_SPANISH", "it": "STOPWORDS_ITALIAN", "pt": "STOPWORDS_PORTUGUESE",
    "nl": "STOPWORDS_DUTCH", "ru": "STOPWORDS_RUSSIAN", "da": "STOPWORDS_DANISH",
    "no": "STOPWORDS_NORWEGIAN", "sv": "STOPWORDS_SWEDISH", "tr": "STOPWORDS_TURKISH",
    "zh": "STOPWORDS_CHINESE", "ko": "STOPWORDS_KOREAN",
}  # fmt: skip
BIGRAM_LANGUAGES = frozenset({"ja", "ko", "th"})
BIGRAM_SCRIPT = re.compile(
    r"[\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    r"\u1100-\u11ff\u3130-\u318f\uac00-\ud7af\u0e00-\u0e7f]+"
)
WORD = re.compile(r"\w+")


@lru_cache(maxsize=64)
def _stemmer(language: str) -> Any:
    import Stemmer

    return Stemmer.Stemmer(SNOWBALL[language])


@lru_cache(maxsize=64)
def stopwords(language: str) -> frozenset[str]:
    name = STOPWORD_LISTS.get(language)
    if name is None:
        return frozenset()
    import bm25s.stopwords

    return frozenset(getattr(bm25s.stopwords, name))


def _jieba() -> Any:

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def bigrams(run: str) -> list[str]:
    return [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]


def _cjk_terms(text: str, language: str) -> list[str]:
    lowered = text.lower()
    if language == "zh":
        stop = stopwords("zh")
        return [
            token
            for token in _jieba().cut_for_search(lowered)
            if WORD.search(token) and token.strip() and token not in stop
        ]
    terms: list[str] = []
    for run in BIGRAM_SCRIPT.findall(lowered):
        terms.extend(bigrams(run))
    stop = stopwords(language)
    rest = BIGRAM_SCRIPT.sub(" ", lowered)
    return terms + [w for w in WORD.findall(rest) if len(w) > 1 and w not in stop]


def tokenize_group(texts: Sequence[str], language: str) -> list[list[str]]:
    """The BM25 terms of texts in one ``language`` (an ISO 639-1 code)."""
    if language == "zh" or language in BIGRAM_LANGUAGES:
        return [_cjk_terms(text, language) for text in texts]
    import bm25s

    stemmer = _stemmer(language).stemWords if language in SNOWBALL else None
    return bm25s.tokenize(
        list(texts),
        stopwords=sorted(stopwords(language)) or None,
        stemmer=stemmer,
        return_ids=False,
        show_progress=False,
    )


def is_known_language(language: str) -> bool:
    """Whether ``language`` (a code or a name) is one BM25 analysis or detection knows."""

    code = normalise(language)
    return (
        code in SNOWBALL
        or code in STOPWORD_LISTS
        or code in BIGRAM_LANGUAGES
        or code in detectable_languages()
    )


def word_term(word: str, language: str) -> str | None:
    """The BM25 term of one word of a segmented language (None: too short or a stopword)."""
    lowered = word.lower()
    if len(lowered) < 2 or lowered in stopwords(language):
        return None
    return _stemmer(language).stemWord(lowered) if language in SNOWBALL else lowered


def tokenize_one(text: str, language: str) -> list[str]:
    return tokenize_group([text], language)[0]


class Analyzer:
    """BM25 analysis for one language, or per text (``"auto"``: each text in its own)."""

    def __init__(self, language: str = "en") -> None:
        self.language = "auto" if language == "auto" else normalise(language)

    def __repr__(self) -> str:
        return f"Analyzer({self.language!r})"

    def tokenize(
        self, texts: Sequence[str], languages: Sequence[str | None] | None = None
    ) -> list[list[str]]:
        """Terms per text; ``languages`` (one code per text) overrides detection."""
        if self.language != "auto":
            chosen = [self.language] * len(texts)
        else:
            given = list(languages) if languages is not None else [None] * len(texts)
            chosen = [code or detect(text) for text, code in zip(texts, given, strict=True)]
        out: list[list[str]] = [[] for _ in texts]
        groups: dict[str, list[int]] = {}
        for position, code in enumerate(chosen):
            groups.setdefault(code, []).append(position)
        for code, positions in groups.items():
            terms = tokenize_group([texts[p] for p in positions], code)
            for position, found in zip(positions, terms, strict=True):
                out[position] = found
        return out
