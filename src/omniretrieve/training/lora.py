"""LoRA fine-tuning of the decoder and VLM families (BGE-Code-v1's Qwen2, BGE-VL's CLIP and
LLaVA-Next, BGE-VL-Screenshot's Qwen2.5-VL, jina-reranker-m0's Qwen2-VL) with transformers'
``Trainer`` and ``peft``.

The family's own model is loaded as it serves (its prompts, padding side and pooling), LoRA
adapters are put on its linear layers (``peft``'s ``all-linear``), and the trainer's loss is the
family's own forward with gradients: embedders by in-batch + hard-negative InfoNCE over
``training_vectors``, rerankers by a softmax over each query's positive and negatives of
``training_logits``. Evaluation runs the family's ``encode`` / ``score`` on the held-out queries.
The result is a standard peft adapter directory (``adapter_config.json``,
``adapter_model.safetensors``) naming its base, which the registry loads back and merges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.inputs import Input, parse_input
from omniretrieve.models.base import LoadOptions
from omniretrieve.models.sources import ModelSource
from omniretrieve.training.examples import Pair
from omniretrieve.training.held_out import HeldOut
from omniretrieve.training.loop import (
    ProgressLines,
    Report,
    TrainedModel,
    common_arguments,
    schedule,
    train_resuming,
)
from omniretrieve.training.settings import TrainSettings, use_bf16

METRIC = "held-out_ndcg@10"


def train_lora(
    base: ModelSource,
    pairs: list[Pair],
    held_out: HeldOut,
    work: Path,
    settings: TrainSettings,
    report: Report | None = None,
    callbacks: tuple[Any, ...] = (),
) -> TrainedModel:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import EarlyStoppingCallback, TrainingArguments

    say = report or (lambda line: None)
    if base.family.kind == "reranker" and not all(p.negatives for p in pairs):
        raise InputError("a reranker learns from negatives: mine them (--mine)", field="mine")
    family_model = base.family.loader().load(
        base, LoadOptions(device=settings.device, dtype="float32")
    )
    config = LoraConfig(
        r=settings.lora_rank,
        lora_alpha=2 * settings.lora_rank,
        lora_dropout=0.0,
        target_modules="all-linear",
    )
    family_model.model = get_peft_model(family_model.model, config)
    score = _held_out_score(family_model, base.family.kind, held_out)
    base_score = score()
    say(f"held-out ndcg@10 of the base model: {base_score:.4f}")
    module = _ContrastiveModule(family_model, pairs, base.family.kind, settings.temperature)
    steps_per_epoch, eval_steps = schedule(len(pairs), settings)
    bf16 = use_bf16(settings)
    args = TrainingArguments(
        **{
            **common_arguments(work, settings, eval_steps, METRIC, bf16, True),
            "logging_steps": 1,
            "remove_unused_columns": False,  # the batches are pair numbers for the module
        }
    )
    progress = ProgressLines(say, settings.batch_size)
    trainer = _trainer_class()(
        model=module,
        args=args,
        train_dataset=_Indices(len(pairs)),
        eval_dataset=_Indices(1),
        data_collator=lambda rows: {"index": torch.tensor([r["index"] for r in rows])},
        callbacks=[EarlyStoppingCallback(settings.patience), progress, *callbacks],
    )
    trainer.held_out_score = score
    output, last, seconds = train_resuming(trainer, work, settings, say)
    planned = math.ceil(steps_per_epoch * settings.epochs)
    return TrainedModel(
        model=_Adapter(family_model, base),
        metric=METRIC,
        base_score=base_score,
        score=score(),
        loss="infonce" if base.family.kind == "embedder" else "listwise-softmax",
        steps=int(output.global_step),
        seconds=seconds,
        examples=progress.examples,
        precision="bf16" if bf16 else "fp32",
        resumed_from=last,
        stopped_early=int(trainer.state.global_step) < planned,
        log=[dict(e) for e in trainer.state.log_history],
    )


def _trainer_class() -> Any:
    from transformers import Trainer

    class HeldOutTrainer(Trainer):
        """Evaluation is the held-out NDCG@10 of the family's own encode / score."""

        held_out_score: Any = None

        def evaluate(
            self,
            eval_dataset: Any = None,
            ignore_keys: Any = None,
            metric_key_prefix: str = "eval",
        ) -> dict[str, float]:
            metrics = {f"{metric_key_prefix}_{METRIC}": self.held_out_score()}
            self.log(metrics)
            self.control = self.callback_handler.on_evaluate(
                self.args, self.state, self.control, metrics
            )
            return metrics

    return HeldOutTrainer


class _Indices:
    """The training set as the trainer sees it: pair numbers (the module holds the pairs)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict[str, int]:
        return {"index": index}


def _module_base() -> Any:
    import torch

    return torch.nn.Module


class _ContrastiveModule(_module_base()):  # type: ignore[misc]
    """The family's model (with its LoRA layers) and the loss over a batch of pairs."""

    def __init__(self, family_model: Any, pairs: list[Pair], kind: str, temperature: float):
        super().__init__()
        self.inner = family_model.model  # registered: the trainer finds and saves its weights
        self.__dict__["family_model"] = family_model  # not a submodule
        self.pairs = pairs
        self.kind = kind
        self.temperature = temperature

    def forward(self, index: Any) -> dict[str, Any]:
        import torch
        import torch.nn.functional as functional

        batch = [self.pairs[i] for i in index.tolist()]
        family = self.__dict__["family_model"]
        if self.kind == "reranker":
            losses = []
            for pair in batch:
                documents = [_input(pair.positive), *(_input(n) for n in pair.negatives)]
                logits = family.training_logits(_input(pair.query), documents).float()
                losses.append(functional.cross_entropy(logits[None], torch.zeros(1).long()))
            return {"loss": torch.stack(losses).mean()}
        queries = family.training_vectors([_input(p.query) for p in batch], query=True)
        documents = [_input(p.positive) for p in batch]
        documents += [_input(n) for p in batch for n in p.negatives]
        vectors = family.training_vectors(documents, query=False)
        scores = queries.float() @ vectors.float().T / self.temperature
        return {"loss": functional.cross_entropy(scores, torch.arange(len(batch)))}


def _input(value: Any) -> Input:
    return parse_input(value, field="pair")


def _held_out_score(family_model: Any, kind: str, held_out: HeldOut) -> Any:
    from omniretrieve.eval.metrics import evaluate_run

    qrels = {q: dict.fromkeys(docs, 1) for q, docs in held_out.relevant.items()}

    def embedder_score() -> float:
        ids = sorted(held_out.corpus)
        queries = sorted(held_out.queries)
        documents = _vectors(family_model, [held_out.corpus[i] for i in ids], "retrieval.passage")
        asked = _vectors(family_model, [held_out.queries[q] for q in queries], "retrieval.query")
        scores = asked @ documents.T
        run = {
            q: {ids[j]: float(scores[row, j]) for j in np.argsort(-scores[row])[:100]}
            for row, q in enumerate(queries)
        }
        return evaluate_run(qrels, run).mean["ndcg@10"]

    samples: list[dict[str, Any]] = []

    def reranker_score() -> float:
        from omniretrieve.training.reranker_training import held_out_samples

        run: dict[str, dict[str, float]] = {}
        if not samples:  # the candidates are the same at every evaluation: chosen once
            samples.extend(held_out_samples(held_out))
        texts = {text: doc_id for doc_id, text in held_out.corpus.items()}
        query_ids = {text: qid for qid, text in held_out.queries.items()}
        for sample in samples:
            candidates = [*sample["positive"], *sample["negative"]]
            output = family_model.score(_input(sample["query"]), [_input(c) for c in candidates])
            run[query_ids[sample["query"]]] = {
                texts[c]: float(s) for c, s in zip(candidates, output.scores, strict=True)
            }
        return evaluate_run(qrels, run).mean["ndcg@10"]

    return embedder_score if kind == "embedder" else reranker_score


def _vectors(family_model: Any, texts: Sequence[str], task: str) -> np.ndarray:
    output = family_model.encode([_input(t) for t in texts], task=task)
    vectors = np.asarray(output.vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class _Adapter:
    """What ``finetune`` saves for a LoRA run: the peft adapter, naming its base."""

    def __init__(self, family_model: Any, base: ModelSource) -> None:
        self.family_model = family_model
        self.base = base

    def save_checkpoint(self, out: Path) -> None:
        peft_model = self.family_model.model
        name = self.base.model_id if self.base.bundled is not None else str(self.base.path)
        peft_model.peft_config["default"].base_model_name_or_path = name
        peft_model.save_pretrained(str(out))
