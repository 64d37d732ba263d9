"""Where a query's terms occur in a text: character spans of the words whose BM25 term (the
same lower-casing, stopwords and stemming as the index) is one of the query's terms. Scripts
without word boundaries (Chinese, Japanese, Korean, Thai) match the query's terms as
substrings."""

from __future__ import annotations

import re

from omniretrieve.text.analyzers import BIGRAM_LANGUAGES, WORD, tokenize_one, word_term

UNSEGMENTED = BIGRAM_LANGUAGES | {"zh"}


def term_spans(text: str, query: str, language: str) -> list[tuple[int, int]]:
    """Character spans in ``text`` of the query's terms, in order, not overlapping."""
    terms = set(tokenize_one(query, language))
    if not terms:
        return []
    if language in UNSEGMENTED:
        lowered = text.lower()
        found: list[tuple[int, int]] = []
        for term in sorted(terms, key=len, reverse=True):
            found += [(m.start(), m.end()) for m in re.finditer(re.escape(term), lowered)]
        return _disjoint(found)
    return [m.span() for m in WORD.finditer(text) if word_term(m.group(), language) in terms]


def _disjoint(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    kept: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if not kept or start >= kept[-1][1]:
            kept.append((start, end))
    return kept
