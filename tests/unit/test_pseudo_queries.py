"""Pseudo-queries: cut from a document, and removed from it (with any verbatim repeat)."""

from __future__ import annotations

import random

from omniretrieve.index.store import StoredDocument
from omniretrieve.index.tuning.pseudo_queries import cut_query, draw_pseudo_queries

CODE = '''def paste(xsel=False):
    """Returns system clipboard contents.

    :param xsel: use the primary selection
    """
    selection = "primary" if xsel else "clipboard"
    return subprocess.Popen(["xclip", "-selection", selection, "-o"]).communicate()[0]
'''
PROSE = (
    "experimental investigation of the aerodynamics of a wing in a slipstream . "
    "experimental investigation of the aerodynamics of a wing in a slipstream . "
    "an experimental study of a wing in a propeller slipstream was made in order to determine "
    "the spanwise distribution of the lift increase due to slipstream."
)


def test_code_gives_its_docstring_and_keeps_only_the_code() -> None:
    query = cut_query("1", CODE, random.Random(0))
    assert query is not None and query.kind == "docstring"
    assert query.text == "Returns system clipboard contents."
    assert "clipboard contents" not in query.masked and ":param" not in query.masked
    assert "subprocess.Popen" in query.masked


def test_a_lead_sentence_is_removed_with_its_repeats() -> None:
    query = cut_query("1", PROSE, random.Random(0))
    assert query is not None and query.kind == "lead"
    assert query.text.startswith("experimental investigation of the aerodynamics")
    assert "aerodynamics" not in query.masked  # the title's second copy went too
    assert query.masked.startswith("an experimental study")


def test_one_sentence_gives_a_span_and_unspaced_scripts_cut_characters() -> None:
    sentence = "The Panthers defense gave up just 308 points, ranking sixth in the league today."
    query = cut_query("1", sentence, random.Random(0))
    assert query is not None and query.kind == "span"
    assert query.text in sentence and query.text not in query.masked
    chinese = "黑豹队的防守只丢了308分，在联盟中排名第六，同时以24次拦截领先国家橄榄球联盟。"
    cut = cut_query("2", chinese, random.Random(0))
    assert cut is not None and cut.kind == "span" and 3 <= len(cut.text) < len(chinese)
    assert cut_query("3", "Too short.", random.Random(0)) is None


def test_the_same_documents_and_seed_give_the_same_queries() -> None:
    documents = {
        str(i): StoredDocument(str(i), f"{PROSE} Sample number {i} of the tests.", {})
        for i in range(50)
    }
    first = draw_pseudo_queries(documents, 20, seed=3)
    assert first == draw_pseudo_queries(dict(reversed(documents.items())), 20, seed=3)
    assert len(first) == 20
    assert first != draw_pseudo_queries(documents, 20, seed=4)
