"""Warnings for texts in languages a model was not trained on (never a silent drop: the texts
are still embedded, and the caller is told which ones may be poor)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from omniretrieve.text.language import detect

SAMPLE_CHARS = 300
"""Detection reads a text's opening only: enough to tell its language, and cheap."""


def language_warnings(
    model_id: str, languages: Iterable[str] | None, texts: Sequence[tuple[int, str]]
) -> list[str]:
    """One warning per uncovered language, naming the inputs (by index) written in it."""
    if languages is None or not texts:
        return []

    covered = frozenset(languages)
    outside: dict[str, list[int]] = {}
    for index, text in texts:
        if len(text.strip()) < 12:  # too short to tell a language reliably
            continue
        code = detect(text[:SAMPLE_CHARS])
        if code not in covered:
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
