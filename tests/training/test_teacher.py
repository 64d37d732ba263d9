"""Teacher margins for Margin-MSE: log-odds differences, on the scale of the student's scaled
similarities (the scale its contrastive loss uses)."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest

from omniretrieve.training.examples import Pair, TrainingData
from omniretrieve.training.teacher import label_margins, log_odds


class FixedTeacher:
    """Relevance probabilities by document text, as a reranker's results give them."""

    def __init__(self, probabilities: dict[str, float]) -> None:
        self.probabilities = probabilities

    def rerank(self, query: str, documents: list[str], **_: Any) -> Any:
        results = [
            SimpleNamespace(index=i, relevance_score=self.probabilities[d])
            for i, d in enumerate(documents)
        ]
        return SimpleNamespace(results=sorted(results, key=lambda r: -r.relevance_score))


def test_margins_are_differences_of_log_odds() -> None:
    """Probabilities 0.9 (positive), 0.5 and 0.1: margins log(9) and 2 log(9), not the
    probability differences 0.4 and 0.8 (which a cosine margin could never match)."""
    pair = Pair("q", "pos", "p", ("mid", "low"), ("m", "l"))
    teacher = FixedTeacher({"pos": 0.9, "mid": 0.5, "low": 0.1})
    labelled = label_margins(TrainingData([pair]), teacher)
    margins = labelled.pairs[0].margins
    assert margins == pytest.approx((math.log(9), 2 * math.log(9)), rel=1e-6)


def test_log_odds_stay_finite_at_certainty() -> None:
    assert math.isfinite(log_odds(1.0)) and math.isfinite(log_odds(0.0))
    assert log_odds(1.0) > log_odds(0.999) > 0 > log_odds(0.001) > log_odds(0.0)


def test_the_student_margin_is_its_cosine_over_the_temperature() -> None:
    """Margin-MSE compares the teacher's log-odds margins with the student's similarities
    divided by the temperature, the logits its contrastive loss would give them."""
    import torch

    from omniretrieve.training.embedder_training import StudentSimilarity
    from omniretrieve.training.settings import TrainSettings

    similarity = StudentSimilarity(TrainSettings(temperature=0.05))
    a = torch.tensor([[1.0, 0.0], [3.0, 4.0]])
    b = torch.tensor([[0.6, 0.8], [3.0, 4.0]])
    assert similarity(a, b).tolist() == pytest.approx([0.6 * 20, 1.0 * 20], rel=1e-6)


def test_the_offline_teacher_in_batches_scores_as_its_rerank_does() -> None:
    """The offline reranker labels thousands of pairs with every text embedded once; its
    margins equal those of one ``rerank`` call per pair."""
    from omniretrieve.reranker import Reranker

    pairs = [
        Pair(
            "aspirin heart attack risk",
            "low dose aspirin lowers the risk of a first heart attack in adults",
            "a",
            ("aspirin is sold in pharmacies", "heart surgery outcomes in children"),
        ),
        Pair(
            "stock market rates",
            "the stock market fell as interest rates rose",
            "s",
            ("a market in paris sells fish", "rates of heart disease rose", "stock photos"),
        ),
    ]
    data = TrainingData(pairs)
    reranker = Reranker("omniretrieve-hybrid-reranker", dtype="float32")
    batched = label_margins(data, reranker)
    one_at_a_time = label_margins(data, RerankOnly(reranker))
    for fast, slow in zip(batched.pairs, one_at_a_time.pairs, strict=True):
        assert fast.margins == pytest.approx(slow.margins, abs=1e-4)
        assert len(fast.margins) == len(fast.negatives)


class RerankOnly:
    """A reranker seen only through ``rerank`` (what any teacher offers)."""

    def __init__(self, reranker: Any) -> None:
        self.rerank = reranker.rerank
