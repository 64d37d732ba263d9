"""Metric values against pytrec_eval called directly, MRR@k's cutoff, ViDoRe-style NDCG@5,
Winoground scoring and the paired tests, all on hand-built fixtures with known answers."""

from __future__ import annotations

import math

import pytest
import pytrec_eval

from omniretrieve.eval.answers import answer_recall, contains_answer, tokens
from omniretrieve.eval.datasets import WinogroundExample
from omniretrieve.eval.metrics import evaluate_run, truncate
from omniretrieve.eval.modality_gap import histogram_overlap
from omniretrieve.eval.significance import compare, corrected_p_values, pairwise_tests
from omniretrieve.eval.winoground import example_scores, winoground_scores

QRELS = {"q1": {"d1": 2, "d3": 1}, "q2": {"d9": 1}, "q3": {"d5": 1}}
RUN = {
    "q1": {f"d{i}": 1.0 - i / 100 for i in range(1, 30)},  # d1 first, d3 third
    "q2": {f"d{i}": 1.0 - i / 100 for i in range(1, 30)},  # d9 ninth
    # q3 is judged but missing from the run: it counts as 0
}


def test_metrics_equal_pytrec_eval_called_directly() -> None:
    ours = evaluate_run(QRELS, RUN, ["ndcg@10", "recall@5", "map@20", "ndcg@5"])
    evaluator = pytrec_eval.RelevanceEvaluator(QRELS, {"ndcg_cut.5,10", "recall.5", "map_cut.20"})
    direct = evaluator.evaluate(RUN)
    for metric, key in [
        ("ndcg@10", "ndcg_cut_10"),
        ("recall@5", "recall_5"),
        ("map@20", "map_cut_20"),
        ("ndcg@5", "ndcg_cut_5"),
    ]:
        expected = sum(direct[q][key] for q in direct) / 3  # q3 scores 0 and still counts
        assert ours.mean[metric] == pytest.approx(expected, abs=1e-12)
        assert ours.per_query[metric]["q3"] == 0.0


def test_mrr_at_k_only_sees_the_top_k() -> None:
    result = evaluate_run(QRELS, RUN, ["mrr@5", "mrr@10", "mrr"])
    assert result.per_query["mrr@10"]["q2"] == pytest.approx(1 / 9)
    assert result.per_query["mrr@5"]["q2"] == 0.0  # d9 is below the cutoff
    assert result.per_query["mrr"]["q2"] == pytest.approx(1 / 9)
    assert result.per_query["mrr@5"]["q1"] == 1.0
    direct = pytrec_eval.RelevanceEvaluator(QRELS, {"recip_rank"}).evaluate(truncate(RUN, 5))
    assert result.per_query["mrr@5"]["q1"] == direct["q1"]["recip_rank"]


def test_vidore_style_ndcg_at_5_known_by_construction() -> None:
    # one relevant page per query: at rank 1 -> 1, at rank 2 -> 1/log2(3), at rank 6 -> 0
    qrels = {"a": {"p1": 1}, "b": {"p2": 1}, "c": {"p6": 1}}
    ranking = {f"p{i}": 10.0 - i for i in range(1, 8)}
    run = {
        "a": ranking,
        "b": {"p1": 9.0, "p2": 8.0, "p3": 7.0},
        "c": ranking,
    }
    result = evaluate_run(qrels, run, ["ndcg@5"])
    assert result.per_query["ndcg@5"] == pytest.approx({"a": 1.0, "b": 1 / math.log2(3), "c": 0.0})
    assert result.mean["ndcg@5"] == pytest.approx((1 + 1 / math.log2(3)) / 3)


def test_unknown_metrics_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_run(QRELS, RUN, ["bleu@10"])
    with pytest.raises(ValueError, match="cutoff"):
        evaluate_run(QRELS, RUN, ["ndcg"])


def test_winoground_example_scores_by_construction() -> None:
    # rows: captions, columns: images; c0 matches i0, c1 matches i1
    assert example_scores([[0.9, 0.1], [0.2, 0.8]]) == {"text": 1.0, "image": 1.0, "group": 1.0}
    # every caption prefers image 0: the image score fails, the text score holds
    assert example_scores([[0.9, 0.5], [0.8, 0.6]]) == {"text": 1.0, "image": 0.0, "group": 0.0}
    # every image prefers caption 0: the text score fails, the image score holds
    assert example_scores([[0.9, 0.7], [0.2, 0.3]]) == {"text": 0.0, "image": 1.0, "group": 0.0}
    # ties never count as a win
    assert example_scores([[0.5, 0.5], [0.5, 0.5]]) == {"text": 0.0, "image": 0.0, "group": 0.0}


def test_winoground_scores_over_examples() -> None:
    examples = [
        WinogroundExample("0", ("a red cube", "a blue ball"), ("red-cube.png", "blue-ball.png")),
        WinogroundExample("1", ("a dog bites a man", "a man bites a dog"), ("dog.png", "man.png")),
    ]

    def scorer(caption: str, image: str) -> float:
        # a "model" that understands colours and shapes but not word order
        words = set(caption.replace("-", " ").split())
        name = set(image.removesuffix(".png").replace("-", " ").split())
        return len(words & name) + (0.5 if "dog" in words and "dog" in name else 0.0)

    result = winoground_scores(examples, scorer)
    assert result.per_example["0"] == {"text": 1.0, "image": 1.0, "group": 1.0}
    assert result.per_example["1"]["group"] == 0.0
    assert (result.text, result.image, result.group) == (
        pytest.approx((1 + result.per_example["1"]["text"]) / 2),
        pytest.approx((1 + result.per_example["1"]["image"]) / 2),
        0.5,
    )


def test_paired_tests_see_a_real_difference_and_not_a_fake_one() -> None:
    a = {f"q{i}": 0.3 + (i % 7) / 20 for i in range(60)}
    better = {q: v + 0.1 + (i % 3) / 100 for i, (q, v) in enumerate(a.items())}
    same = dict(a)
    shuffled = {f"q{i}": a[f"q{(i + 30) % 60}"] for i in range(60)}
    assert compare(a, better).t_test_p < 1e-6
    assert compare(a, better).randomisation_p < 0.001
    assert compare(a, same).randomisation_p == 1.0
    assert compare(a, shuffled).randomisation_p > 0.05
    assert compare(a, better).delta == pytest.approx(0.11)


def test_holm_and_bonferroni_corrections_by_hand() -> None:
    raw = [0.01, 0.04, 0.03]
    # Holm, step-down: sorted 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.04, 0.06) = 0.06
    assert corrected_p_values(raw, "holm") == pytest.approx([0.03, 0.06, 0.06])
    assert corrected_p_values(raw, "bonferroni") == pytest.approx([0.03, 0.12, 0.09])
    assert corrected_p_values([0.5, 0.6], "bonferroni") == pytest.approx([1.0, 1.0])
    assert corrected_p_values(raw, "none") == raw
    with pytest.raises(ValueError, match="holm"):
        corrected_p_values(raw, "sidak-ish")


def test_pairwise_tests_correct_each_family_and_name_the_winner() -> None:
    from scipy import stats

    base = {f"q{i}": 0.3 + (i % 7) / 20 for i in range(40)}
    better = {q: v + 0.1 + (i % 3) / 100 for i, (q, v) in enumerate(base.items())}
    noise = {f"q{i}": base[f"q{(i + 20) % 40}"] for i in range(40)}
    per_query = {
        ("set", "test", "ndcg@10", "bm25"): base,
        ("set", "test", "ndcg@10", "hybrid"): better,
        ("set", "test", "ndcg@10", "dense"): noise,
        ("other", "test", "ndcg@10", "bm25"): base,  # a family of its own (one pair)
        ("other", "test", "ndcg@10", "hybrid"): base,
    }
    tests = pairwise_tests(per_query, [("bm25", "hybrid"), ("bm25", "dense")])
    family = [t for t in tests if t.dataset == "set"]
    assert [(t.a, t.b, t.family) for t in family] == [("bm25", "hybrid", 2), ("bm25", "dense", 2)]
    raw = [t.comparison.randomisation_p for t in family]
    assert [t.corrected_p for t in family] == pytest.approx(corrected_p_values(raw, "holm"))
    ids = sorted(base)
    direct = stats.ttest_rel([better[q] for q in ids], [base[q] for q in ids]).pvalue
    assert family[0].comparison.t_test_p == pytest.approx(direct)
    assert family[0].winner == "hybrid" and family[1].winner is None
    (alone,) = [t for t in tests if t.dataset == "other"]
    assert alone.family == 1 and alone.corrected_p == 1.0 and alone.winner is None


def test_answer_match_tokens_and_recall_at_k_by_hand() -> None:
    assert tokens("Rock’n’roll — “1,000” km") == ("rock", "'", "n", "'", "roll", "-", '"', "1",
                                                  ",", "000", '"', "km")  # fmt: skip
    assert tokens("ÉCOLE") == tokens("école")  # case and composed/decomposed accents fold
    assert contains_answer(tokens("the river Spree flows"), [tokens("River Spree")])
    assert not contains_answer(tokens("the river Spree"), [tokens("the Spree")])  # contiguous
    assert not contains_answer(tokens("Parisian cafés"), [tokens("Paris")])  # whole tokens
    texts = {"d1": "nothing here", "d2": "still nothing", "d3": "It was 1,000 km long."}
    run = {"q1": {"d1": 3.0, "d2": 2.0, "d3": 1.0}, "q2": {"d1": 1.0}}
    answers = {"q1": ["1,000 km"], "q2": ["nope"], "q3": ["absent from the run"]}
    found = answer_recall(run, answers, texts, [1, 2, 3])
    assert found[1] == {"q1": 0.0, "q2": 0.0, "q3": 0.0}
    assert found[3] == {"q1": 1.0, "q2": 0.0, "q3": 0.0}


def test_histogram_overlap_by_hand() -> None:
    assert histogram_overlap([0.1, 0.5, 0.9], [0.1, 0.5, 0.9]) == pytest.approx(1.0)
    assert histogram_overlap([0.0, 0.1], [0.9, 1.0]) == 0.0
    # half of a sits where all of b is: overlap one half
    assert histogram_overlap([0.0, 1.0], [0.0, 0.0]) == pytest.approx(0.5)
    assert math.isnan(histogram_overlap([], [0.3]))
