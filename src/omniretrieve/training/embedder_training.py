"""Fine-tuning a sentence encoder with sentence-transformers' trainer.

The loss: in-batch + hard-negative InfoNCE (``MultipleNegativesRankingLoss``, scale = 1 /
temperature), its GradCache-style cached variant, or Margin-MSE on a teacher's margins.
Duplicates are kept out of a batch (they would be false in-batch negatives). The trainer
evaluates NDCG@10 on the held-out queries a few times per epoch, keeps the best checkpoint and
stops when it stops improving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omniretrieve.errors import InputError
from omniretrieve.training.examples import Pair
from omniretrieve.training.held_out import HeldOut
from omniretrieve.training.loop import Report, TrainedModel, run_trainer
from omniretrieve.training.settings import TrainSettings

HELD_OUT_NAME = "held-out"
CPU_MAX_LENGTH = 256


def train_sentence_encoder(
    base: Path,
    pairs: list[Pair],
    held_out: HeldOut,
    work: Path,
    settings: TrainSettings,
    report: Report | None = None,
    callbacks: tuple[Any, ...] = (),
) -> TrainedModel:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.evaluation import (
        InformationRetrievalEvaluator,
    )

    model = SentenceTransformer(str(base), device=settings.device, local_files_only=True)
    saved_length = model.max_seq_length
    if settings.max_length is not None:
        model.max_seq_length = settings.max_length
    elif settings.device == "cpu" and (model.max_seq_length or 0) > CPU_MAX_LENGTH:
        model.max_seq_length = CPU_MAX_LENGTH
    evaluator = InformationRetrievalEvaluator(
        dict[str, Any](held_out.queries),
        dict[str, Any](held_out.corpus),
        held_out.relevant,
        name=HELD_OUT_NAME,
        ndcg_at_k=[10],
        mrr_at_k=[10],
        accuracy_at_k=[1],
        precision_recall_at_k=[10],
        map_at_k=[10],
        write_csv=False,
        batch_size=64,
    )
    metric = f"{HELD_OUT_NAME}_cosine_ndcg@10"
    loss_name = embedder_loss(settings, pairs)
    dataset = embedder_dataset(pairs, loss_name)
    loss = _loss(model, loss_name, settings)
    trained = run_trainer(
        "sentence-transformer",
        model,
        dataset,
        loss,
        evaluator,
        metric,
        work,
        settings,
        loss_name=loss_name,
        report=report,
        callbacks=callbacks,
    )
    trained.model.max_seq_length = saved_length  # trained shorter on CPU; saved as the base
    return trained


def embedder_loss(settings: TrainSettings, pairs: list[Pair]) -> str:
    if settings.loss == "bce":
        raise InputError(
            "bce trains cross-encoders; embedders take mnrl, cached-mnrl or margin-mse",
            field="loss",
        )
    with_margins = any(p.margins for p in pairs)
    if settings.loss == "margin-mse" and not with_margins:
        raise InputError(
            "margin-mse needs a teacher's margins (--teacher) over mined negatives (--mine)",
            field="loss",
        )
    if settings.loss == "auto":
        return "margin-mse" if with_margins else "mnrl"
    return settings.loss


def embedder_dataset(pairs: list[Pair], loss: str) -> Any:
    """Columns as the loss reads them: (anchor, positive, negative_1..k) for the InfoNCE
    losses (k = the fewest negatives any pair has), (query, positive, negative, label) rows
    for Margin-MSE (one row per negative)."""
    from datasets import Dataset

    pairs = usable_pairs(pairs, loss)
    if loss == "margin-mse":
        rows = [
            {"query": p.query, "positive": p.positive, "negative": n, "label": m}
            for p in pairs
            for n, m in zip(p.negatives, p.margins, strict=True)
        ]
        return Dataset.from_list(rows)
    k = min(len(p.negatives) for p in pairs)
    columns: dict[str, list[str]] = {
        "anchor": [p.query for p in pairs],
        "positive": [p.positive for p in pairs],
    }
    for index in range(k):
        columns[f"negative_{index + 1}"] = [p.negatives[index] for p in pairs]
    return Dataset.from_dict(columns)


def usable_pairs(pairs: list[Pair], loss: str) -> list[Pair]:
    """Margin-MSE learns from pairs with margins only; InfoNCE takes as many hard negatives
    per pair as every pair has, so pairs mining found no negative for are left out when they
    are few (at most a fifth), rather than taking the hard negatives from all the others."""
    if loss == "margin-mse":
        return [p for p in pairs if p.margins]
    without = [p for p in pairs if not p.negatives]
    if without and len(without) <= len(pairs) // 5:
        return [p for p in pairs if p.negatives]
    return pairs


class StudentSimilarity:
    """The student's similarity for Margin-MSE: cosine divided by the temperature, the logit
    its contrastive loss gives a pair, on the scale of the teacher's log-odds margins."""

    def __init__(self, settings: TrainSettings) -> None:
        self.scale = 1.0 / settings.temperature

    def __call__(self, a: Any, b: Any) -> Any:
        from sentence_transformers.util import pairwise_cos_sim

        return pairwise_cos_sim(a, b) * self.scale


def _loss(model: Any, name: str, settings: TrainSettings) -> Any:
    from sentence_transformers.sentence_transformer import losses

    if name == "margin-mse":
        return losses.MarginMSELoss(model, similarity_fct=StudentSimilarity(settings))
    if name == "cached-mnrl":
        return losses.CachedMultipleNegativesRankingLoss(
            model, scale=1.0 / settings.temperature, mini_batch_size=settings.mini_batch_size
        )
    return losses.MultipleNegativesRankingLoss(model, scale=1.0 / settings.temperature)
