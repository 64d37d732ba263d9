"""``finetune``: a base model + training data -> a new checkpoint directory.

The steps: resolve the base (a bundled id, a directory, a hub id), mine hard negatives from
the training corpus, let a teacher label margins (when asked), hold out part of the training
queries, train, and write the result in the base's own layout with a ``training.json`` (data
hashes, settings, what was mined, the held-out evaluation). A model that does not beat its
base on the held-out queries is reported and not written (unless ``keep_rejected``): an
adaptation must earn its place.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from omniretrieve.errors import InputError, OmniRetrieveError
from omniretrieve.models.registry import DEFAULT_EMBEDDER, Registry, default_registry
from omniretrieve.models.sources import ModelSource
from omniretrieve.runtime.progress import progress_bar
from omniretrieve.training.examples import TrainingData
from omniretrieve.training.held_out import held_out_set, split_held_out, split_pairs
from omniretrieve.training.loop import Report, TrainedModel
from omniretrieve.training.mining import MiningSettings, mine_hard_negatives
from omniretrieve.training.settings import TrainSettings
from omniretrieve.training.teacher import label_margins

MIN_GAIN = 0.005
"""Held-out NDCG@10 a trained model must add to its base to be used: the offline reranker's
refit that gained 0.0015 on 100 held-out pseudo-queries lost 2.8 points on SciFact's real
queries (p = 0.0006; docs/finetuning.md)."""
RECORD = "training.json"
WORK = ".training"
"""Inside the output directory while training runs: checkpoints to resume from."""
ENCODER_FAMILIES = frozenset({"sentence-encoder"})
CROSS_ENCODER_BASES = frozenset({"sentence-encoder", "cross-encoder"})
LORA_FAMILIES = frozenset({"decoder-embedder", "clip", "vlm-embedder", "vlm-reranker"})

Target = Literal["embedder", "reranker"]
DEFAULT_MINING = MiningSettings()
DEFAULT_SETTINGS = TrainSettings()


class TrainingRejectedError(OmniRetrieveError):
    """The trained model did not beat its base on the held-out queries; not written."""

    error_type = "training_rejected"


@dataclass(frozen=True)
class FinetuneResult:
    out: Path
    accepted: bool
    record: dict[str, Any]


def finetune(
    model: str | Path,
    data: TrainingData,
    out: Path,
    *,
    target: Target | None = None,
    mining: MiningSettings | None = DEFAULT_MINING,
    teacher: str | None = None,
    settings: TrainSettings = DEFAULT_SETTINGS,
    report: Report | None = None,
    callbacks: tuple[Any, ...] = (),
    registry: Registry | None = None,
) -> FinetuneResult:
    """Train ``model`` on ``data`` into ``out``. Raises :class:`TrainingRejectedError` (after
    writing ``out/training.json``) when the result does not beat the base on held-out queries
    by :data:`MIN_GAIN` and ``settings.keep_rejected`` is off."""
    settings = settings.check()
    say = report or (lambda line: None)
    registry = registry or default_registry()
    base = registry.resolve(model)
    target = target or base.family.kind
    method = _method(base, target, settings)
    work = _prepare_out(out, settings)
    started = time.time()
    if target != "embedder":  # margins teach embedders (Margin-MSE)
        teacher = None
    if method == "refit":  # candidate sets of its own: no mining
        mining = None
    if mining is not None and not all(p.negatives for p in data.pairs):
        data = _mine(data, mining, base, say)
    if teacher is not None:
        data = _teach(data, teacher, say)
    if method == "refit":
        from omniretrieve.training.hybrid_refit import refit_hybrid_reranker

        pairs, held = split_pairs(data, settings)
        held_out = held_out_set(held, data, settings.seed)
        trained = refit_hybrid_reranker(data, pairs, held, say)
    else:
        pairs, held_out = split_held_out(data, settings)
        say(
            f"training {base.model_id} ({method}) on {len(pairs)} pairs; "
            f"{len(held_out.queries)} queries held out"
        )
        trained = _train(method, base, pairs, held_out, work, settings, say, callbacks)
    accepted = trained.score - trained.base_score >= MIN_GAIN
    record = _record(base, target, method, data, mining, teacher, settings, held_out, trained)
    record.update(accepted=accepted, seconds_total=round(time.time() - started, 1))
    if accepted or settings.keep_rejected:
        _save(trained, out)
    _write_record(out, record)
    shutil.rmtree(work, ignore_errors=True)
    if not accepted and not settings.keep_rejected:
        raise TrainingRejectedError(
            f"the trained model scored {trained.score:.4f} {_metric_name(trained)} on "
            f"{len(held_out.queries)} held-out queries, its base {trained.base_score:.4f}: "
            f"not better by at least {MIN_GAIN} (less is noise on held-out queries), so not "
            f"written (the run is recorded in {out / RECORD}; "
            "keep_rejected / --keep-rejected writes it anyway)"
        )
    return FinetuneResult(out, accepted, record)


def _metric_name(trained: TrainedModel) -> str:
    return trained.metric.rsplit("_", 1)[-1]


def _method(base: ModelSource, target: str, settings: TrainSettings) -> str:
    family = base.family.name
    if target == "embedder" and family in ENCODER_FAMILIES and not settings.lora:
        return "sentence-transformer"
    if target == "reranker" and family in CROSS_ENCODER_BASES:
        return "cross-encoder"
    if family in LORA_FAMILIES and target == base.family.kind:
        return "lora"
    if family == "hybrid-reranker" and target == "reranker":
        return "refit"
    raise InputError(
        f"{base.model_id} ({family} family) cannot be trained as a {target}: sentence "
        "encoders train as embedders or cross-encoders, cross-encoders as rerankers, the "
        "offline reranker is refitted, "
        f"{', '.join(sorted(LORA_FAMILIES))} with LoRA as what they are",
        field="model",
    )


def _prepare_out(out: Path, settings: TrainSettings) -> Path:
    work = out / WORK
    if out.exists():
        if not out.is_dir():
            raise InputError(f"{out} is a file, not a directory", field="out")
        others = [p.name for p in out.iterdir() if p.name != WORK]
        if others:
            raise InputError(
                f"{out} is not empty ({', '.join(sorted(others)[:3])}...); give a new directory",
                field="out",
            )
        if not settings.resume:
            shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    return work


def _mine(
    data: TrainingData, mining: MiningSettings, base: ModelSource, say: Report
) -> TrainingData:
    encode_queries = encode_documents = None
    if mining.method != "bm25":
        from omniretrieve.eval.caching import CachingEmbedder
        from omniretrieve.runtime.cache import EmbeddingCache

        embedder_id: str | Path = (
            base.model_id if base.family.kind == "embedder" else DEFAULT_EMBEDDER
        )
        if base.family.kind == "embedder" and base.path is not None and base.bundled is None:
            embedder_id = base.path
        # the corpus's vectors are cached on disk: a second run on the same data mines at once
        embedder = CachingEmbedder(str(embedder_id), EmbeddingCache())

        def encode_queries(texts: list[str]) -> Any:
            return embedder.encode_texts(texts, task="retrieval.query", show_progress=False)

        def encode_documents(texts: list[str]) -> Any:
            return embedder.encode_texts(texts, task="retrieval.passage", show_progress=True)

    say(f"mining {mining.count} hard negative(s) per pair ({mining.method})")
    return mine_hard_negatives(
        data,
        mining,
        encode_queries=encode_queries,
        encode_documents=encode_documents,
        show_progress=True,
    )


def _teach(data: TrainingData, teacher: str, say: Report) -> TrainingData:
    from omniretrieve.reranker import Reranker

    if not any(p.negatives for p in data.pairs):
        raise InputError("a teacher labels negatives: mine some (--mine)", field="teacher")
    say(f"teacher {teacher} labels the margins")
    reranker = Reranker(teacher)
    with progress_bar(len(data.pairs), f"teacher margins ({teacher})") as advance:
        return label_margins(data, reranker, progress=advance)


def _train(
    method: str,
    base: ModelSource,
    pairs: list[Any],
    held_out: Any,
    work: Path,
    settings: TrainSettings,
    say: Report,
    callbacks: tuple[Any, ...],
) -> TrainedModel:
    assert base.path is not None
    if method == "sentence-transformer":
        from omniretrieve.training.embedder_training import train_sentence_encoder

        return train_sentence_encoder(base.path, pairs, held_out, work, settings, say, callbacks)
    if method == "cross-encoder":
        from omniretrieve.training.reranker_training import train_cross_encoder

        return train_cross_encoder(base.path, pairs, held_out, work, settings, say, callbacks)
    from omniretrieve.training.lora import train_lora

    return train_lora(base, pairs, held_out, work, replace(settings, lora=True), say, callbacks)


def _save(trained: TrainedModel, out: Path) -> None:
    saver = getattr(trained.model, "save_checkpoint", None)
    if saver is not None:
        saver(out)
    else:
        trained.model.save(str(out), create_model_card=False)


def _record(
    base: ModelSource,
    target: str,
    method: str,
    data: TrainingData,
    mining: MiningSettings | None,
    teacher: str | None,
    settings: TrainSettings,
    held_out: Any,
    trained: TrainedModel,
) -> dict[str, Any]:
    import sentence_transformers
    import torch
    import transformers

    from omniretrieve import __version__

    return {
        "omniretrieve": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "base": {
            "model": base.model_id,
            "family": base.family.name,
            "path": str(base.path),
            "fingerprint": base.fingerprint(),
        },
        "target": target,
        "method": method,
        "data": data.summary(),
        "mining": mining.to_json() if mining is not None else None,
        "teacher": teacher,
        "settings": settings.to_json(),
        "held_out": {**held_out.to_json(), **trained.to_json()},
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
    }


def _write_record(out: Path, record: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    temporary = out / f".{RECORD}.tmp"
    temporary.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(out / RECORD)
