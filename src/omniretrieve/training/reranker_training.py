"""Training a cross-encoder reranker (from any encoder's weights, the bundled MiniLM's
included, or from a cross-encoder) with sentence-transformers' CrossEncoderTrainer.

Each pair gives rows (query, positive, 1) and (query, negative, 0) per mined negative;
binary cross-entropy with the positives weighted by the negatives per positive. The result is
a ``*ForSequenceClassification`` checkpoint with one logit, which the cross-encoder family
serves (sigmoid, scores in [0, 1]). Held-out: each held-out query's positives among its
top BM25 candidates of the held-out documents, NDCG@10 after reranking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.training.examples import Pair
from omniretrieve.training.held_out import HeldOut
from omniretrieve.training.loop import Report, TrainedModel, run_trainer
from omniretrieve.training.settings import TrainSettings

HELD_OUT_NAME = "held-out"
CANDIDATES = 30
"""Held-out candidates reranked per query (its positives are always among them)."""
CPU_MAX_LENGTH = 320


def train_cross_encoder(
    base: Path,
    pairs: list[Pair],
    held_out: HeldOut,
    work: Path,
    settings: TrainSettings,
    report: Report | None = None,
    callbacks: tuple[Any, ...] = (),
) -> TrainedModel:
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    if settings.loss not in ("auto", "bce"):
        raise InputError("a cross-encoder trains with bce (or auto)", field="loss")
    if not any(p.negatives for p in pairs):
        raise InputError(
            "a cross-encoder learns from negatives: mine them (--mine) or give them",
            field="mine",
        )
    model = CrossEncoder(str(base), num_labels=1, device=settings.device, local_files_only=True)
    cap = settings.max_length or (CPU_MAX_LENGTH if settings.device == "cpu" else 512)
    if not model.max_seq_length or model.max_seq_length > cap:  # never above the model's own
        model.max_seq_length = cap

    evaluator = CrossEncoderRerankingEvaluator(
        held_out_samples(held_out),
        at_k=10,
        name=HELD_OUT_NAME,
        write_csv=False,
        batch_size=64,
    )
    negatives_per_positive = max(1.0, sum(len(p.negatives) for p in pairs) / len(pairs))
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(negatives_per_positive))
    return run_trainer(
        "cross-encoder",
        model,
        cross_encoder_dataset(pairs),
        loss,
        evaluator,
        f"{HELD_OUT_NAME}_ndcg@10",
        work,
        settings,
        loss_name="bce",
        report=report,
        callbacks=callbacks,
    )


def cross_encoder_dataset(pairs: list[Pair]) -> Any:
    from datasets import Dataset

    rows: list[dict[str, Any]] = []
    for pair in pairs:
        rows.append({"query": pair.query, "document": pair.positive, "label": 1.0})
        rows.extend({"query": pair.query, "document": n, "label": 0.0} for n in pair.negatives)
    return Dataset.from_list(rows)


def held_out_samples(held_out: HeldOut) -> list[dict[str, Any]]:
    """Per held-out query: its positives and its best BM25 candidates that are not."""
    from omniretrieve.text.bm25 import BM25Index

    ids = sorted(held_out.corpus)
    index = BM25Index([held_out.corpus[i] for i in ids])
    samples = []
    for query_id, query in sorted(held_out.queries.items()):
        relevant = held_out.relevant[query_id]
        scores = index.scores(query)
        order = np.argsort(-scores, kind="stable")
        negatives = [ids[i] for i in order if ids[i] not in relevant][: CANDIDATES - len(relevant)]
        samples.append(
            {
                "query": query,
                "positive": [held_out.corpus[i] for i in sorted(relevant)],
                "negative": [held_out.corpus[i] for i in negatives],
            }
        )
    return samples
