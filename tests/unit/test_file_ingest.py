"""The pieces of issue 29's ingest and page, alone: encodings, HTML text, word-boundary
snippets, facets, the picture cache, stored-file references."""

from __future__ import annotations

import pytest

from omniretrieve.errors import InputError
from omniretrieve.index.facets import metadata_facets
from omniretrieve.index.snippets import word_bounds
from omniretrieve.index.store import StoredDocument
from omniretrieve.index.stored_files import parse_ref
from omniretrieve.ingest.text_files import decode_text, html_text
from omniretrieve.server.thumbnails import Picture, PictureCache

SAMPLES = {
    "koi8_r": "Съешь же ещё этих мягких французских булок, да выпей чаю. Привет, мир.",
    "cp1251": "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "cp1252": "Crème brûlée et café au lait: la pâtisserie française, déjà célèbre à Paris.",
    "cp1250": "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "gb18030": "我们的搜索引擎可以处理多种语言的文本。",
    "shift_jis": "日本語のテキストを検索します。これはテストです。",
}


@pytest.mark.parametrize("encoding", sorted(SAMPLES))
def test_legacy_encodings_are_read(encoding: str) -> None:
    decoded = decode_text(SAMPLES[encoding].encode(encoding), suffix=".txt", label="f")
    assert decoded.text == SAMPLES[encoding] and decoded.encoding == encoding


def test_boms_pep263_and_binary() -> None:
    text = "naïve café"
    assert decode_text(b"\xef\xbb\xbf" + text.encode(), suffix=".md", label="f").text == text
    assert decode_text(text.encode("utf-16"), suffix=".txt", label="f").text == text
    source = "# -*- coding: latin-1 -*-\nX = 'Grüße'\n"
    decoded = decode_text(source.encode("latin-1"), suffix=".py", label="f")
    assert decoded.text == source and decoded.encoding == "iso-8859-1"
    with pytest.raises(InputError, match="offset 3"):
        decode_text(b"abc\xff\x00\x01\x02binary", suffix=".txt", label="f")


def test_html_is_read_as_text() -> None:
    text = html_text("<html><body><P >Hello <b>world</b></P><UL ><LI >&#13;one</LI></UL></body>")
    assert "Hello world" in text and "one" in text and "<" not in text and "&#13;" not in text


def test_snippets_are_cut_at_word_boundaries() -> None:
    text = "alpha beta gamma delta epsilon zeta"
    start, end = word_bounds(text, 8, 26)  # "ta gamma delta eps"
    assert text[start:end] == "gamma delta"
    assert word_bounds(text, 0, len(text)) == (0, len(text))
    long = "x" * 50
    assert word_bounds(long, 10, 20) == (10, 20)  # one long word is cut


def test_facets_keep_fields_with_few_plain_values() -> None:
    documents = [
        StoredDocument(f"d{n}", "t", {"suffix": [".md", ".py"][n % 2], "n": n, "path": f"p{n}"})
        for n in range(60)
    ]
    facets = metadata_facets(documents)
    assert facets == {"suffix": [[".md", 30], [".py", 30]]}  # n has 60 values; path is hidden


def test_the_picture_cache_stays_within_its_bytes() -> None:
    cache = PictureCache(max_bytes=10)
    for number in range(4):
        cache.put((str(number), 0), Picture(b"1234", "image/png", str(number)))
    assert cache.get(("0", 0)) is None and cache.get(("3", 0)) is not None
    cache.put(("big", 0), Picture(b"x" * 11, "image/png", "big"))
    assert cache.get(("big", 0)) is None


def test_stored_references_are_strict() -> None:
    ref = parse_ref("stored:" + "a" * 64 + ".pdf#page=3")
    assert ref is not None and ref.page == 3 and ref.is_pdf
    assert parse_ref("data:image/png;base64,xx") is None
    for bad in ("stored:../../etc/passwd", "stored:" + "a" * 64 + "/x", "stored:" + "g" * 64):
        with pytest.raises(InputError):
            parse_ref(bad)
