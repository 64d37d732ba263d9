"""A hit's best passage and where the query's terms occur in it.

The best passage is the one that scored: for a dense field the query read, the passage whose
stored vector is closest to the query's (the document's dense score is its max); otherwise the
stored passage holding most of the query's terms. Highlights are the character spans of the
query's terms (BM25's analysis of the document's language) inside that passage. With
``max_chars`` the hit carries that much text from the passage (from its start, or, in a
longer passage, from a little before its first matching word) instead of the whole document
(``text_start`` says where it begins).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from omniretrieve.index.ingest import IMAGE_SPAN
from omniretrieve.index.results import SearchHit
from omniretrieve.index.settings import field_name
from omniretrieve.index.store import StoredDocument, StoredState
from omniretrieve.text.highlight import term_spans

WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Snippet:
    text: str
    text_start: int
    passage: tuple[int, int] | None
    highlights: list[tuple[int, int]] = field(default_factory=list)


def with_snippets(
    hits: Sequence[SearchHit],
    state: StoredState,
    query_text: str,
    document_language: Callable[[str], str],
    query_vectors: Mapping[str, np.ndarray],
    max_chars: int | None,
) -> list[SearchHit]:
    """``hits`` with their best passage, highlights and (with ``max_chars``) cut text."""
    out = []
    for hit in hits:
        found = snippet(
            state.documents[hit.doc_id],
            state,
            query_text,
            document_language(hit.doc_id),
            query_vectors,
            max_chars,
        )
        out.append(
            replace(
                hit,
                text=found.text,
                text_start=found.text_start,
                document_chars=len(state.documents[hit.doc_id].text),
                passage=found.passage,
                highlights=found.highlights,
            )
        )
    return out


def snippet(
    document: StoredDocument,
    state: StoredState,
    query_text: str,
    language: str,
    query_vectors: Mapping[str, np.ndarray],
    max_chars: int | None,
) -> Snippet:
    text = document.text
    terms = term_spans(text, query_text, language) if query_text.strip() and text else []
    passage = _dense_passage(document.doc_id, state, query_vectors)
    if passage is None:
        passage = _passage_with_most_terms(document.doc_id, state, terms)
    start, end = passage if passage is not None else (0, len(text))
    inside = [(a, b) for a, b in terms if a >= start and b <= end]
    if max_chars is None:
        return Snippet(text, 0, passage, inside)
    window = start
    if end - start > max_chars and inside:  # a long passage: show its first matching words
        window = max(start, min(inside[0][0] - max_chars // 4, end - max_chars))
    limit = min(len(text), window + max_chars)
    window, limit = word_bounds(text, window, limit)
    shown = [(a, b) for a, b in inside if a >= window and b <= limit]
    return Snippet(text[window:limit], window, passage, shown)


def word_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """``text[start:end]`` moved in to whole words: a start inside a word moves past it, an
    end inside a word moves back before it (unless that would drop more than a third of the
    window: one very long word is cut)."""
    if 0 < start < end and not text[start - 1].isspace() and not text[start].isspace():
        found = WHITESPACE.search(text, start, end)
        if found is not None and found.end() - start <= (end - start) // 3:
            start = found.end()
    if start < end < len(text) and not text[end - 1].isspace() and not text[end].isspace():
        last = max((m.start() for m in WHITESPACE.finditer(text, start, end)), default=-1)
        if last > start and end - last <= (end - start) // 3:
            end = last
    return start, end


def _dense_passage(
    doc_id: str, state: StoredState, query_vectors: Mapping[str, np.ndarray]
) -> tuple[int, int] | None:
    for model_id, vector in query_vectors.items():
        stored = state.passages.get(field_name(model_id), {}).get(doc_id)
        if stored is None:
            continue
        spans, vectors = stored
        text_rows = [i for i, span in enumerate(spans) if tuple(span) != IMAGE_SPAN]
        if not text_rows:
            continue
        scores = vectors[text_rows] @ vector
        return tuple(spans[text_rows[int(np.argmax(scores))]])  # type: ignore[return-value]
    return None


def _passage_with_most_terms(
    doc_id: str, state: StoredState, terms: list[tuple[int, int]]
) -> tuple[int, int] | None:
    for per_doc in state.passages.values():
        stored = per_doc.get(doc_id)
        if stored is None:
            continue
        spans = [tuple(s) for s in stored[0] if tuple(s) != IMAGE_SPAN]
        if not spans:
            return None
        counts = [sum(1 for a, b in terms if a >= s[0] and b <= s[1]) for s in spans]
        return spans[int(np.argmax(counts))]  # type: ignore[return-value]
    return None
