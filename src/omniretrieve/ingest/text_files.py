"""Text files as text: their encoding found (a byte-order mark, a PEP 263 ``coding:`` line in
Python source, UTF-8, or charset-normalizer's best guess), HTML reduced to its readable text
with trafilatura, and binary files told apart from text."""

from __future__ import annotations

import codecs
import io
import tokenize
from dataclasses import dataclass

from omniretrieve.errors import InputError

HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

PREFERRED_ENCODINGS = (
    "cp1252",
    "iso8859_15",
    "koi8_r",
    "cp1251",
    "cp1250",
    "iso8859_2",
    "gb18030",
    "big5",
    "shift_jis",
    "euc_jp",
    "euc_kr",
    "cp1253",
    "cp1254",
    "cp1255",
    "cp1256",
    "cp1257",
    "iso8859_7",
    "iso8859_9",
    "koi8_u",
)
"""Legacy encodings tried first, most widely used first (the order breaks near-ties)."""
CHAOS_MARGIN = 0.1


@dataclass(frozen=True)
class DecodedText:
    text: str
    encoding: str
    """The encoding the bytes were read in (Python's codec name)."""


def decode_text(data: bytes, *, suffix: str, label: str) -> DecodedText:
    """``data`` as text: a byte-order mark wins, then Python's own rules for ``.py`` files
    (PEP 263), then UTF-8, then the encoding charset-normalizer finds most plausible. Bytes
    that no encoding reads as text (NUL bytes, a binary file) are an error naming ``label``
    and the first byte UTF-8 cannot read."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return _decoded(data, encoding, label)
    if suffix == ".py":
        return _python_source(data, label)
    try:
        return DecodedText(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as exc:
        bad = exc.start
    guessed = None if b"\x00" in data else _guess(data)
    if guessed is None:
        raise InputError(
            f"{label} is not text: byte 0x{data[bad]:02x} at offset {bad} is not UTF-8 and no "
            "other encoding reads the file as text (a binary file?)",
            field="file",
        )
    return guessed


def _decoded(data: bytes, encoding: str, label: str) -> DecodedText:
    try:
        return DecodedText(data.decode(encoding), encoding)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{label} is not valid {encoding} (offset {exc.start}), although it starts with "
            "that encoding's byte-order mark",
            field="file",
        ) from exc


def _python_source(data: bytes, label: str) -> DecodedText:
    """Python source as the interpreter reads it: a ``coding:`` line in its first two lines
    (PEP 263), else UTF-8."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:  # an unknown codec named in the coding line
        raise InputError(f"{label}: {exc}", field="file") from exc
    try:
        return DecodedText(data.decode(encoding), encoding)
    except UnicodeDecodeError as exc:
        guessed = None if b"\x00" in data else _guess(data)
        if guessed is not None and encoding == "utf-8":  # no coding line: not UTF-8 after all
            return guessed
        raise InputError(
            f"{label} is not valid {encoding.upper()} (byte 0x{data[exc.start]:02x} at "
            f"offset {exc.start}), the encoding its coding line names or Python's default",
            field="file",
        ) from exc


def _guess(data: bytes) -> DecodedText | None:
    """charset-normalizer's reading among the common legacy encodings (the rest when none of
    those fits). Short texts fit several: of those nearly as clean as the best, the most
    widely used wins (Western European text in windows-1252 reads, with a few odd letters,
    as Baltic too)."""
    from charset_normalizer import from_bytes

    for isolation in (list(PREFERRED_ENCODINGS), None):
        matches = list(from_bytes(data, cp_isolation=isolation))
        if not matches:
            continue
        best = min(matches, key=lambda m: (m.chaos, -m.coherence))
        close = [
            m
            for m in matches
            if m.chaos <= best.chaos + CHAOS_MARGIN and m.coherence >= best.coherence - 0.05
        ]
        chosen = min(close, key=lambda m: _preference(m.encoding))
        return DecodedText(str(chosen), chosen.encoding)
    return None


def _preference(encoding: str) -> int:
    try:
        return PREFERRED_ENCODINGS.index(encoding)
    except ValueError:
        return len(PREFERRED_ENCODINGS)


def html_text(markup: str) -> str:
    """The readable text of an HTML page: its main content as trafilatura extracts it
    (tables kept), or, where it finds none (a short page, a fragment), all of its text."""
    import trafilatura

    extracted = trafilatura.extract(
        markup, include_tables=True, include_comments=False, favor_recall=True
    )
    if extracted and extracted.strip():
        return extracted.strip()
    return trafilatura.html2txt(markup).strip()
