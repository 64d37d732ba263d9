"""Warnings for texts in languages a model was not trained on (never a silent drop: the texts
are still embedded, and the caller is told which ones may be poor).

A text is flagged only when the detector is confident it is in none of the model's languages:
together they get under 1% of its probability. Short English queries ("python sort list")
often come out as a neighbouring language by a small margin; measured on the English queries
of SciFact (1,109), Cranfield (225), CoSQA dev (500) and XQuAD-R (1,190) against MiniLM's
English, the top-language rule raised 8, 0, 50 and 10 warnings, this rule none; it still flags
96-100% of XQuAD-R's German, Spanish, Turkish, Vietnamese, Greek, Arabic, Hindi, Russian, Thai
and Chinese questions (``tests/integration/test_multilingual.py`` checks both on the data).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from omniretrieve.text.language import detect, language_probabilities

SAMPLE_CHARS = 300
"""Detection reads a text's opening only: enough to tell its language, and cheap."""
COVERED_AT_MOST = 0.01
"""A text is flagged when the model's languages together have at most this probability."""
MIN_CHARS = 12
"""Shorter texts are not judged, except in scripts dense enough to tell (CJK, Thai...)."""


def too_short(text: str) -> bool:
    stripped = text.strip()
    dense = sum(1 for ch in stripped if ord(ch) >= 0x0E00)  # Thai, CJK, kana, hangul ...
    return len(stripped) < MIN_CHARS and dense < 4


def language_warnings(
    model_id: str, languages: Iterable[str] | None, texts: Sequence[tuple[int, str]]
) -> list[str]:
    """One warning per uncovered language, naming the inputs (by index) written in it."""
    if languages is None or not texts:
        return []

    covered = frozenset(languages)
    outside: dict[str, list[int]] = {}
    for index, text in texts:
        if too_short(text):
            continue
        sample = text[:SAMPLE_CHARS]
        code = detect(sample)
        if code in covered:
            continue
        probabilities = language_probabilities(sample)
        if sum(probabilities.get(c, 0.0) for c in covered) <= COVERED_AT_MOST:
            outside.setdefault(code, []).append(index)
    warnings = []
    for code, indices in sorted(outside.items()):
        shown = ", ".join(str(i) for i in indices[:10]) + (" ..." if len(indices) > 10 else "")
        warnings.append(
            f"{len(indices)} input(s) look like language {code!r}, which {model_id} was not "
            f"trained on (it covers {', '.join(sorted(covered))}); their vectors may be poor: "
            f"input {shown}"
        )
    return warnings
