"""Fusion-weight fitting helpers: folds that keep a question's translations together."""

from __future__ import annotations

from omniretrieve.eval.tuning import equal_share, split_folds, weights_for


def test_folds_keep_groups_together_and_are_stable() -> None:
    languages = ["en", "de", "zh", "ar"]
    ids = [f"{lang}-{question}" for question in range(200) for lang in languages]
    groups = {i: i.split("-", 1)[1] for i in ids}
    folds = split_folds(ids, groups)
    assert sorted(q for fold in folds for q in fold) == sorted(ids)
    assert all(200 < len(fold) < 600 for fold in folds)  # near halves
    for fold in folds:
        questions = {groups[q] for q in fold}
        other = {groups[q] for f in folds if f is not fold for q in f}
        assert not questions & other  # no question is split across folds
    assert split_folds(list(reversed(ids)), groups)[0] == list(reversed(folds[0]))
    alone = split_folds(ids, {})  # without groups each query is its own
    assert {groups[q] for q in alone[0]} & {groups[q] for q in alone[1]}


def test_weights_split_the_rest_equally() -> None:
    assert weights_for(0.4, 2) == (0.4, 0.3, 0.3)
    assert equal_share(2) == 1 / 3
    assert weights_for(equal_share(1), 1) == (0.5, 0.5)
