"""Hard-negative mining: never a labelled positive, never a candidate scoring like one."""

from __future__ import annotations

import numpy as np
import pytest

from omniretrieve.errors import InputError
from omniretrieve.training.examples import Pair, TrainingData, positives_by_query
from omniretrieve.training.mining import MiningSettings, choose_negatives, mine_hard_negatives

CORPUS = {
    "aspirin-1": "aspirin lowers the risk of heart attack in adults",
    "aspirin-2": "aspirin and heart attack risk: a trial in adults",
    "aspirin-3": "low dose aspirin heart attack prevention",
    "tower": "the eiffel tower is in paris",
    "stock": "the stock market fell as rates rose",
    "cats": "cats eat fish and dogs eat bones",
    "dogs": "dogs eat bones",
    "market": "a market in paris sells fish",
}


def test_mined_negatives_never_include_a_labelled_positive() -> None:
    """A query with three judged documents: each of its pairs is mined, none of the three
    comes back as a negative although they rank at the top for the query (and would for a
    pair that labels only one of them)."""
    query = "aspirin heart attack risk"
    pairs = [Pair(query, CORPUS[d], d) for d in ("aspirin-1", "aspirin-2", "aspirin-3")]
    data = TrainingData(pairs, CORPUS, positives_by_query(pairs))
    mined = mine_hard_negatives(
        data, MiningSettings(method="bm25", count=3, skip_top=0, relative_margin=0.0)
    )
    for pair in mined.pairs:
        assert pair.negative_ids and not set(pair.negative_ids) & {
            "aspirin-1",
            "aspirin-2",
            "aspirin-3",
        }
        assert [CORPUS[i] for i in pair.negative_ids] == list(pair.negatives)


def test_the_false_negative_guard_and_the_skipped_top() -> None:
    ids = ["positive", "as-good", "close", "far", "farther"]
    scores = np.array([10.0, 10.0, 9.0, 4.0, 1.0])
    settings = MiningSettings(method="bm25", count=2, skip_top=0, relative_margin=0.05)
    # the ceiling is 9.5: "as-good" scores like the positive and is likely relevant too
    assert choose_negatives(ids, scores, {"positive"}, settings, 9.5) == ["close", "far"]
    skipping = MiningSettings(method="bm25", count=2, skip_top=3, relative_margin=0.05)
    assert choose_negatives(ids, scores, {"positive"}, skipping, 9.5) == ["far", "farther"]


def test_mining_settings_are_checked() -> None:
    with pytest.raises(InputError, match="none of"):
        MiningSettings(method="splade").check()  # type: ignore[arg-type]
    with pytest.raises(InputError, match="depth > skip_top"):
        MiningSettings(skip_top=50, depth=50).check()
    with pytest.raises(InputError, match="needs the documents"):
        mine_hard_negatives(TrainingData([Pair("q", "p")]), MiningSettings(method="bm25"))
