"""How a model is trained: the settings ``finetune`` takes and ``training.json`` records."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from omniretrieve.errors import InputError

Loss = Literal["auto", "mnrl", "cached-mnrl", "margin-mse", "bce"]
LOSSES: tuple[str, ...] = ("auto", "mnrl", "cached-mnrl", "margin-mse", "bce")
Precision = Literal["auto", "bf16", "fp32"]


@dataclass(frozen=True)
class TrainSettings:
    epochs: float = 1.0
    batch_size: int = 32
    learning_rate: float | None = None
    """None: 5e-5 for full fine-tuning (transformers' default; on SciFact's train qrels one
    epoch at 2e-5 gained 2.7 points of test NDCG@10, at 5e-5 3.9), 1e-4 for LoRA."""
    warmup_ratio: float = 0.1
    loss: Loss = "auto"
    """auto: margin-mse where a teacher labelled margins, else mnrl (embedders); bce
    (cross-encoders). mnrl is in-batch + hard-negative InfoNCE; cached-mnrl is the same with
    GradCache-style cached negatives (large batches in bounded memory)."""
    temperature: float = 0.05
    """InfoNCE temperature (sentence-transformers' scale = 1 / temperature)."""
    mini_batch_size: int = 16
    """cached-mnrl: texts embedded at once with gradients."""
    max_length: int | None = None
    """Tokens per text (None: the base model's own limit, capped at 256 for speed on CPU)."""
    precision: Precision = "auto"
    """auto: bf16 autocast where the device has bf16 (CPUs with AVX-512 BF16, GPUs), else fp32."""
    seed: int = 0
    held_out: float = 0.1
    """Share of the training queries held out to stop early and to judge the result (never
    the test qrels: only the training data is split)."""
    max_held_out: int = 300
    patience: int = 2
    """Evaluations without improvement on the held-out queries before training stops."""
    evaluations_per_epoch: int = 3
    keep_best: bool = True
    """Keep the checkpoint that scored best on the held-out queries (the first of equals);
    False keeps the last one."""
    lora: bool | None = None
    """None: LoRA for decoder and VLM families, full fine-tuning for encoders."""
    lora_rank: int = 16
    keep_rejected: bool = False
    """Write a model that does not beat its base on the held-out queries anyway."""
    resume: bool = True
    """Continue from the last checkpoint a crashed run left in the output directory."""
    device: str = "cpu"

    def check(self) -> TrainSettings:
        if self.loss not in LOSSES:
            raise InputError(f"loss {self.loss!r} is none of {', '.join(LOSSES)}", field="loss")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise InputError("precision is auto, bf16 or fp32", field="precision")
        if self.epochs <= 0 or self.batch_size < 2:
            raise InputError("epochs > 0 and batch_size >= 2", field="epochs")
        if not 0 < self.held_out < 0.5:
            raise InputError("held_out lies in (0, 0.5)", field="held_out")
        if not 0 < self.temperature <= 1:
            raise InputError("temperature lies in (0, 1]", field="temperature")
        return self

    def rate(self, lora: bool) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 1e-4 if lora else 5e-5

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def bf16_available(device: str) -> bool:
    import torch

    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    cpu = getattr(torch.backends, "cpu", None)
    capability = cpu.get_cpu_capability() if cpu is not None else ""
    return "AVX512" in str(capability) and _cpu_flag("avx512_bf16")


def _cpu_flag(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return any(flag in line.split() for line in handle if line.startswith("flags"))
    except OSError:
        return False


def use_bf16(settings: TrainSettings) -> bool:
    if settings.precision == "fp32":
        return False
    available = bf16_available(settings.device)
    if settings.precision == "bf16" and not available:
        raise InputError(f"{settings.device} has no bf16 support", field="precision")
    return available
