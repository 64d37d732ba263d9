"""Pseudo-queries for training: the lead the self-tuning fit cuts, or an inner sentence
(the inverse cloze task), always removed from the document that must answer it."""

from __future__ import annotations

import pytest

from omniretrieve.errors import InputError
from omniretrieve.training.data_sources import pseudo_query_data

CORPUS = {
    f"d{i}": (
        f"Title number {i} of a study. "
        f"The first finding concerns heart attacks in group {i}. "
        f"The second finding concerns strokes in cohort {i}. "
        f"The third finding concerns fevers in sample {i}."
    )
    for i in range(20)
}


def test_lead_cuts_are_the_first_sentences() -> None:
    data = pseudo_query_data(CORPUS, count=20, seed=1, cut="lead")
    for pair in data.pairs:
        assert pair.query.startswith("Title number")
        assert pair.query not in pair.positive


def test_sentence_cuts_are_inner_sentences_removed_from_their_document() -> None:
    data = pseudo_query_data(CORPUS, count=20, seed=1, cut="sentence")
    assert len(data.pairs) == 20
    kinds = set()
    for pair in data.pairs:
        assert pair.query.startswith("The "), pair.query  # never the title
        assert pair.query not in pair.positive
        assert pair.positive.startswith("Title number")
        kinds.add(pair.query.split()[1])
    assert kinds == {"first", "second", "third"}  # drawn at random, with the seed


def test_mixed_cuts_take_both_and_the_seed_fixes_them() -> None:
    data = pseudo_query_data(CORPUS, count=20, seed=3, cut="mixed")
    leads = sum(p.query.startswith("Title") for p in data.pairs)
    assert 0 < leads < 20
    again = pseudo_query_data(CORPUS, count=20, seed=3, cut="mixed")
    assert [p.query for p in again.pairs] == [p.query for p in data.pairs]


def test_a_one_sentence_document_falls_back_to_the_fit_s_cut() -> None:
    corpus = {"one": "a single long sentence about aspirin and heart attack risk in adults"}
    data = pseudo_query_data(corpus, count=1, cut="sentence")
    assert len(data.pairs) == 1 and data.pairs[0].query not in data.pairs[0].positive


def test_an_unknown_cut_is_refused() -> None:
    with pytest.raises(InputError, match="lead, sentence or mixed"):
        pseudo_query_data(CORPUS, count=2, cut="words")  # type: ignore[arg-type]
