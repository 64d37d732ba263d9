"""Pseudo-queries cut from a collection's own documents, each judged by the document it was
cut from (an inverse cloze task).

The text a query is cut from is removed from its document (``masked``): the document must be
found from the rest of it, as a real question must find a document that does not repeat it.
Without the cut, BM25 would find every source by its exact words and every fit would favour
BM25. Which span becomes the query depends on the document:

- code with a docstring or comments: the first sentence of its documentation (queries to
  code are natural language; the code without its comments is what must answer);
- prose of several sentences: its first sentence (a title, when the title leads the text);
- a single sentence (answer sentences, captions): a window of about a third of its words (or
  characters, in scripts written without spaces).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from omniretrieve.index.store import StoredDocument

MIN_QUERY_WORDS = 3
MAX_QUERY_WORDS = 32
MIN_REST_WORDS = 8
"""What must remain of a document once its query is cut out, in words (or characters / 3)."""

SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")
DOCSTRING = re.compile(r'("""|\'\'\')(.*?)\1', re.DOTALL)
LINE_COMMENT = re.compile(r"^[ \t]*(#|//)[ \t]?(.*)$", re.MULTILINE)
DOC_FIELD = re.compile(
    r"^\s*[:@]|^\s*(Args|Arguments|Returns|Parameters|Raises|Yields|Examples?)\s*:?\s*$|^\s*-{3,}",
    re.IGNORECASE,
)
"""Where a docstring's summary ends: ``:param``, ``@return``, section headers, rulers."""
CODE_HINT = re.compile(r"^\s*(def|class|function|func|fn|public|private|import|#include)\b", re.M)


@dataclass(frozen=True)
class PseudoQuery:
    doc_id: str
    text: str
    masked: str
    """The document's text with the query's span removed."""
    kind: str
    """``docstring``, ``lead``, ``span`` or ``sentence`` (an inner one, for training): how it
    was cut; ``cross``: the same cut, judged
    by a translation of its document (see :mod:`.cross_lingual`)."""
    target: str | None = None
    """The document that must be found, when it is not the one the query was cut from (a
    cross-lingual query; its own document is then left out of the lists)."""

    @property
    def relevant(self) -> str:
        return self.target if self.target is not None else self.doc_id


def draw_pseudo_queries(
    documents: Mapping[str, StoredDocument], count: int, seed: int = 0
) -> list[PseudoQuery]:
    """Up to ``count`` pseudo-queries from documents drawn at random (``seed``; the same
    documents and seed give the same queries on any machine)."""
    order = sorted(documents)
    random.Random(seed).shuffle(order)
    drawn: list[PseudoQuery] = []
    for doc_id in order:
        if len(drawn) >= count:
            break
        document = documents[doc_id]
        if document.image:  # an image embedder would still see what was cut out
            continue
        query = cut_query(doc_id, document.text, random.Random(f"{seed}:{doc_id}"))
        if query is not None:
            drawn.append(query)
    return drawn


def cut_query(doc_id: str, text: str, rng: random.Random) -> PseudoQuery | None:
    """A pseudo-query cut from ``text`` (None when the text is too short to cut one)."""
    for kind, make in (("docstring", _documentation), ("lead", _lead), ("span", _span)):
        cut = make(text, rng)
        if cut is None:
            continue
        start, end, query = cut
        query = " ".join(query.split())
        masked = _without_repeats(_join(text[:start], text[end:]), query)
        if _size(query) >= MIN_QUERY_WORDS and _size(masked) >= MIN_REST_WORDS:
            return PseudoQuery(doc_id, query, masked, kind)
    return None


def cut_sentence(doc_id: str, text: str, rng: random.Random) -> PseudoQuery | None:
    """An inner sentence of ``text`` (any but the first), drawn with ``rng``, as the query
    and removed from the document: the inverse cloze task. None when the text has no inner
    sentence of query size."""
    stripped_end = len(text.rstrip())
    starts = [0] + [m.end() for m in SENTENCE_END.finditer(text) if m.end() < stripped_end]
    bounds = list(zip(starts, [*starts[1:], len(text)], strict=True))
    spans = [
        (start, end)
        for start, end in bounds[1:]
        if MIN_QUERY_WORDS <= _size(text[start:end]) <= MAX_QUERY_WORDS
    ]
    if not spans:
        return None
    start, end = spans[rng.randrange(len(spans))]
    query = " ".join(text[start:end].split())
    masked = _without_repeats(_join(text[:start], text[end:]), query)
    if _size(masked) < MIN_REST_WORDS:
        return None
    return PseudoQuery(doc_id, query, masked, "sentence")


def _without_repeats(text: str, query: str) -> str:
    """``text`` with every other verbatim copy of the query removed (a title repeated at the
    start of the body would hand the query back)."""
    words = query.split()
    if not words:
        return text
    pattern = r"\s+".join(re.escape(w) for w in words)
    return " ".join(re.sub(pattern, " ", text, flags=re.IGNORECASE).split())


def _documentation(text: str, rng: random.Random) -> tuple[int, int, str] | None:
    """Code: its docstring (or leading comments), whose first sentence is the query; the
    whole documentation block is removed."""
    if not CODE_HINT.search(text):
        return None
    docstring = DOCSTRING.search(text)
    if docstring is not None:
        return docstring.start(), docstring.end(), _first_doc_sentence(docstring.group(2))
    comments = list(LINE_COMMENT.finditer(text))
    if not comments:
        return None
    block = [comments[0]]
    for match in comments[1:]:  # consecutive comment lines
        if text[block[-1].end() : match.start()].strip():
            break
        block.append(match)
    body = " ".join(m.group(2) for m in block)
    return block[0].start(), block[-1].end(), _first_doc_sentence(body)


def _first_doc_sentence(documentation: str) -> str:
    lines: list[str] = []
    for line in documentation.strip().splitlines():
        if not line.strip() or DOC_FIELD.match(line):
            if lines:
                break
            continue
        lines.append(line.strip())
    sentences = SENTENCE_END.split(" ".join(lines))
    return _clip(sentences[0] if sentences else "")


def _lead(text: str, rng: random.Random) -> tuple[int, int, str] | None:
    stripped = text.lstrip()
    offset = len(text) - len(stripped)
    match = SENTENCE_END.search(stripped)
    if match is None or not stripped[match.end() :].strip():
        return None
    sentence = stripped[: match.start()]
    if _size(sentence) > MAX_QUERY_WORDS:
        return None
    return offset, offset + match.end(), sentence


def _span(text: str, rng: random.Random) -> tuple[int, int, str] | None:
    """A window of about a third of the text, at a random place (the rest must answer)."""
    units = list(_units(text))
    if len(units) < MIN_QUERY_WORDS + MIN_REST_WORDS:
        return None
    length = min(max(MIN_QUERY_WORDS, len(units) // 3), _unit_budget(text))
    first = rng.randrange(0, len(units) - length + 1)
    start, end = units[first][0], units[first + length - 1][1]
    return start, end, text[start:end]


def _units(text: str) -> Iterator[tuple[int, int]]:
    """Words, or characters for text written mostly without spaces (Chinese, Thai...)."""
    if _spaced(text):
        for match in re.finditer(r"\S+", text):
            yield match.span()
    else:
        for index, char in enumerate(text):
            if not char.isspace():
                yield index, index + 1


def _spaced(text: str) -> bool:
    words = text.split()
    return bool(words) and len(text) / len(words) < 12


def _unit_budget(text: str) -> int:
    return MAX_QUERY_WORDS if _spaced(text) else MAX_QUERY_WORDS * 3


def _size(text: str) -> int:
    """Words, or characters / 3 in scripts without spaces."""
    return len(text.split()) if _spaced(text) else len("".join(text.split())) // 3


def _clip(sentence: str) -> str:
    words = sentence.split()
    return " ".join(words[:MAX_QUERY_WORDS])


def _join(before: str, after: str) -> str:
    return f"{before.rstrip()}\n{after.lstrip()}".strip()
