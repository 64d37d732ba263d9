"""One run of a sentence-transformers trainer (embedders and cross-encoders alike).

What it adds to the trainer: the held-out score of the base before training (what the result
must beat), evaluation and checkpoints a few times per epoch, early stopping, resuming from the
last checkpoint a crashed run left, bf16 autocast where the device has it, and progress lines
with the loss and the throughput.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from omniretrieve.training.settings import TrainSettings, use_bf16

Report = Callable[[str], None]


@dataclass
class TrainedModel:
    model: Any
    metric: str
    base_score: float
    score: float
    loss: str
    steps: int
    seconds: float
    examples: int
    precision: str
    resumed_from: str | None = None
    stopped_early: bool = False
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "base": round(self.base_score, 6),
            "tuned": round(self.score, 6),
            "gain": round(self.score - self.base_score, 6),
            "loss": self.loss,
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "examples": self.examples,
            "examples_per_second": round(self.examples_per_second, 2),
            "precision": self.precision,
            "resumed_from": self.resumed_from,
            "stopped_early": self.stopped_early,
            "log": self.log,
        }


def run_trainer(
    kind: Literal["sentence-transformer", "cross-encoder"],
    model: Any,
    dataset: Any,
    loss: Any,
    evaluator: Any,
    metric: str,
    work: Path,
    settings: TrainSettings,
    *,
    loss_name: str,
    lora: bool = False,
    report: Report | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainedModel:
    from transformers import EarlyStoppingCallback

    say = report or (lambda line: None)
    base_score = float(evaluator(model)[metric])
    say(f"held-out {metric.split('_', 1)[-1]} of the base model: {base_score:.4f}")
    steps_per_epoch, eval_steps = schedule(len(dataset), settings)
    bf16 = use_bf16(settings)
    args = _arguments(kind, work, settings, eval_steps, metric, bf16, lora)
    trainer_class = _trainer_class(kind)
    progress = ProgressLines(say, settings.batch_size)
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=dataset,
        loss=loss,
        evaluator=evaluator,
        callbacks=[EarlyStoppingCallback(settings.patience), progress, *callbacks],
    )
    output, last, seconds = train_resuming(trainer, work, settings, say)
    score = float(evaluator(model)[metric])
    state = trainer.state
    planned = math.ceil(steps_per_epoch * settings.epochs)
    return TrainedModel(
        model=model,
        metric=metric,
        base_score=base_score,
        score=score,
        loss=loss_name,
        steps=int(output.global_step),
        seconds=seconds,
        examples=progress.examples,
        precision="bf16" if bf16 else "fp32",
        resumed_from=last,
        stopped_early=int(state.global_step) < planned,
        log=[_rounded(entry) for entry in state.log_history],
    )


def schedule(examples: int, settings: TrainSettings) -> tuple[int, int]:
    """(steps per epoch, steps between evaluations and checkpoints)."""
    steps_per_epoch = max(1, math.ceil(examples / settings.batch_size))
    return steps_per_epoch, max(1, steps_per_epoch // max(1, settings.evaluations_per_epoch))


def common_arguments(
    work: Path, settings: TrainSettings, eval_steps: int, metric: str, bf16: bool, lora: bool
) -> dict[str, Any]:
    """The trainer settings every run shares (transformers' ``TrainingArguments`` names):
    the schedule, precision, seed, evaluation and checkpoints, the best kept, no reporting."""
    return {
        "output_dir": str(work),
        "num_train_epochs": settings.epochs,
        "per_device_train_batch_size": settings.batch_size,
        "per_device_eval_batch_size": settings.batch_size,
        "learning_rate": settings.rate(lora),
        "warmup_steps": settings.warmup_ratio,  # a float below 1: a share of the steps
        "bf16": bf16,
        "seed": settings.seed,
        "data_seed": settings.seed,
        "eval_strategy": "steps",
        "eval_steps": eval_steps,
        "save_strategy": "steps",
        "save_steps": eval_steps,
        "save_total_limit": 2,
        "load_best_model_at_end": settings.keep_best,
        "metric_for_best_model": f"eval_{metric}",
        "greater_is_better": True,
        "logging_steps": max(1, eval_steps // 2),
        "report_to": "none",
        "use_cpu": settings.device == "cpu",
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }


def train_resuming(
    trainer: Any, work: Path, settings: TrainSettings, say: Report
) -> tuple[Any, str | None, float]:
    """Train, from the last checkpoint in ``work`` when resuming: (the trainer's output, the
    checkpoint resumed from, seconds). The trainer's stdout printer is removed: progress
    goes to ``say``."""
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_utils import get_last_checkpoint

    trainer.remove_callback(PrinterCallback)
    last = get_last_checkpoint(str(work)) if settings.resume and work.is_dir() else None
    if last is not None:
        say(f"resuming from {last}")
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=last)
    return output, last, time.perf_counter() - started


def _trainer_class(kind: str) -> Any:
    if kind == "cross-encoder":
        from sentence_transformers.cross_encoder import CrossEncoderTrainer

        return CrossEncoderTrainer
    from sentence_transformers import SentenceTransformerTrainer

    return SentenceTransformerTrainer


def _arguments(
    kind: str,
    work: Path,
    settings: TrainSettings,
    eval_steps: int,
    metric: str,
    bf16: bool,
    lora: bool,
) -> Any:
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

    arguments_class = (
        CrossEncoderTrainingArguments
        if kind == "cross-encoder"
        else SentenceTransformerTrainingArguments
    )
    extra: dict[str, Any] = {}
    if kind == "sentence-transformer":
        from sentence_transformers.base.sampler import BatchSamplers

        extra["batch_sampler"] = BatchSamplers.NO_DUPLICATES
    return arguments_class(
        **common_arguments(work, settings, eval_steps, metric, bf16, lora), **extra
    )


def _rounded(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in entry.items()}


def _callback_base() -> Any:
    from transformers import TrainerCallback

    return TrainerCallback


class ProgressLines(_callback_base()):  # type: ignore[misc]
    """A line per log: step, share done, loss, examples per second, time left."""

    def __init__(self, say: Report, batch_size: int) -> None:
        self.say = say
        self.batch_size = batch_size
        self.started = time.perf_counter()
        self.first_step = 0
        self.examples = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started = time.perf_counter()
        self.first_step = int(state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.examples += self.batch_size

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        logs = logs or {}
        step, total = int(state.global_step), int(state.max_steps)
        elapsed = time.perf_counter() - self.started
        done = step - self.first_step
        rate = self.examples / elapsed if elapsed > 1 else 0.0
        left = elapsed / done * (total - step) if done else 0.0
        if "loss" in logs:
            self.say(
                f"step {step}/{total} ({step / max(total, 1):.0%}) loss {logs['loss']:.4f} "
                f"· {rate:.1f} examples/s · {left:.0f} s left"
            )
        scores = {k: v for k, v in logs.items() if k.endswith("ndcg@10")}
        for name, value in scores.items():
            self.say(f"step {step}: held-out {name.rsplit('_', 1)[-1]} {value:.4f}")
