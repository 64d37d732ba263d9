"""Answer-string matching: the recall of open-domain QA retrieval (DPR, RocketQA; MKQA in
FlagEmbedding's evaluator), where a query counts as found at k when one of its top k passages
contains one of its answers.

Text and answers are compared as token sequences: Unicode-normalised (NFD; dashes, minus signs,
quotes and slashes folded to their ASCII forms, soft hyphens and control characters dropped),
split into runs of letters, digits and marks or single other visible characters, lower-cased;
an answer matches where its tokens occur contiguously in the passage's.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from typing import Any

FOLDED = {
    **dict.fromkeys("‐‑⁃‒–—―−－⁻", "-"),
    **dict.fromkeys("“”„‟", '"'),
    **dict.fromkeys("‘’‚‛՚Ꞌꞌ＇`´′‵", "'"),
    **dict.fromkeys("⁄∕", "/"),
    "″": "''",
    "‶": "''",
    "‴": "'''",
    "‷": "'''",
    "⁗": "''''",
    "…": "...",
    "\u00ad": "",
    "\u000b": " ",
    "\u000c": " ",
    "\u0085": " ",
    **dict.fromkeys([chr(c) for c in (*range(1, 9), 14, 15, *range(17, 28))], ""),
}
TABLE = str.maketrans(FOLDED)


@cache
def _token_pattern() -> Any:
    import regex

    return regex.compile(r"[\p{L}\p{N}\p{M}]+|[^\p{Z}\p{C}]", flags=regex.UNICODE)


def tokens(text: str) -> tuple[str, ...]:
    """``text`` as the lower-cased token sequence answers are matched in."""
    normalised = unicodedata.normalize("NFD", text.translate(TABLE))
    return tuple(m.group().lower() for m in _token_pattern().finditer(normalised))


def contains_answer(passage: Sequence[str], answers: Iterable[Sequence[str]]) -> bool:
    """Whether one of ``answers`` (token sequences) occurs contiguously in ``passage``."""
    for answer in answers:
        size = len(answer)
        if size and any(
            tuple(passage[i : i + size]) == tuple(answer) for i in range(len(passage) - size + 1)
        ):
            return True
    return False


def answer_recall(
    run: Mapping[str, Mapping[str, float]],
    answers: Mapping[str, Sequence[str]],
    texts: Mapping[str, str],
    cutoffs: Sequence[int],
) -> dict[int, dict[str, float]]:
    """Per cutoff k, per query with answers: 1.0 when one of its top k documents (by score,
    ties by id) contains one of its answers, else 0.0 (a query missing from the run: 0)."""
    deepest = max(cutoffs)
    found: dict[int, dict[str, float]] = {k: {} for k in cutoffs}
    for query_id, strings in answers.items():
        wanted = [tokens(s) for s in strings if s.strip()]
        ranked = sorted(run.get(query_id, {}).items(), key=lambda item: (-item[1], item[0]))
        first_hit = next(
            (
                rank
                for rank, (doc_id, _) in enumerate(ranked[:deepest], start=1)
                if contains_answer(tokens(texts.get(doc_id, "")), wanted)
            ),
            None,
        )
        for k in cutoffs:
            found[k][query_id] = 1.0 if first_hit is not None and first_hit <= k else 0.0
    return found
