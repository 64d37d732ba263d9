"""``omniretrieve finetune``: train a model on the user's data into a new checkpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from omniretrieve.cli.app import app
from omniretrieve.cli.common import handle_errors


@app.command("finetune")
@handle_errors
def finetune_command(
    model: str = typer.Option(
        ..., "--model", "-m", help="Base model: a bundled id, a checkpoint directory, a hub id."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="A new directory for the trained model."),
    dataset: Path = typer.Option(
        None, "--dataset", "-d", help="A BEIR folder (or a name under --datasets-root)."
    ),
    split: str = typer.Option("train", "--split", help="The qrels split of --dataset to learn."),
    datasets_root: Path = typer.Option(None, "--datasets-root", help="Where -d NAME is found."),
    pairs: Path = typer.Option(
        None, "--pairs", help='A JSONL of {"query", "positive" | "positive_id", "negatives"?}.'
    ),
    corpus: Path = typer.Option(
        None,
        "--corpus",
        help="A corpus JSONL: alone, pseudo-queries are cut from it (unsupervised); with "
        "--pairs, the documents their ids name and negatives are mined from.",
    ),
    collection: str = typer.Option(
        None, "--collection", help="Learn from a collection's documents (pseudo-queries)."
    ),
    clicks: Path = typer.Option(
        None, "--clicks", help='With --collection: a query log, {"query", "doc_id"} per line.'
    ),
    root: Path = typer.Option(None, help="Where --collection lives (default: user data dir)."),
    target: str = typer.Option(
        None, "--target", help="embedder or reranker (a cross-encoder; default: the base's kind)."
    ),
    mine: str = typer.Option(
        "hybrid", "--mine", help="Hard negatives from the corpus: hybrid, bm25, dense or none."
    ),
    negatives: int = typer.Option(
        None, "--negatives", help="Mined negatives per pair (1; 7 for a reranker)."
    ),
    skip_top: int = typer.Option(3, "--skip-top", help="Top candidates passed over when mining."),
    margin: float = typer.Option(
        0.05, "--margin", help="A negative scores below the positive by this share (guard)."
    ),
    teacher: str | None = typer.Option(
        None,
        "--teacher",
        help="A reranker whose margins the embedder learns (Margin-MSE); 'default' for the "
        "default reranker; default: none with labels; for pseudo-queries, a collection's "
        "configured reranker or the offline one.",
    ),
    pseudo_queries: int = typer.Option(
        5000, "--pseudo-queries", help="Pseudo-queries cut from the documents, at most."
    ),
    cut: str = typer.Option(
        "lead",
        "--cut",
        help="Pseudo-queries: lead (as the self-tuning fit cuts them), sentence (an inner "
        "sentence, the inverse cloze task) or mixed.",
    ),
    epochs: float = typer.Option(1.0, "--epochs"),
    batch_size: int = typer.Option(32, "--batch-size"),
    learning_rate: float = typer.Option(None, "--learning-rate", help="Default 5e-5 (1e-4 LoRA)."),
    loss: str = typer.Option(
        "auto", "--loss", help="auto, mnrl, cached-mnrl, margin-mse (embedders), bce (rerankers)."
    ),
    temperature: float = typer.Option(0.05, "--temperature", help="InfoNCE temperature."),
    max_length: int = typer.Option(None, "--max-length", help="Tokens per text while training."),
    precision: str = typer.Option(
        "auto", "--precision", help="auto (bf16 where native), bf16, fp32."
    ),
    held_out: float = typer.Option(
        0.1, "--held-out", help="Share of the training queries held out (early stop, the verdict)."
    ),
    lora: bool = typer.Option(
        None, "--lora/--full", help="LoRA or full fine-tuning (default: by family)."
    ),
    keep_last: bool = typer.Option(
        False, "--keep-last", help="Keep the last checkpoint, not the best on held-out queries."
    ),
    keep_rejected: bool = typer.Option(
        False, "--keep-rejected", help="Write the model even if it does not beat its base."
    ),
    restart: bool = typer.Option(
        False, "--restart", help="Ignore the checkpoints of an interrupted run in --out."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1 ..."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Fine-tune an embedder or a reranker on your data: a BEIR split's qrels, a pairs file,
    a collection's click log, or only documents (unsupervised: pseudo-queries, mined hard
    negatives and a teacher's margins). Writes a checkpoint in the base's layout with a
    training.json, usable wherever a model is (dense:DIR, serve --model DIR, collections);
    a model that does not beat its base on held-out training queries is not written."""
    from omniretrieve.errors import InputError
    from omniretrieve.models.registry import DEFAULT_RERANKER
    from omniretrieve.training.finetune import finetune
    from omniretrieve.training.mining import MiningSettings
    from omniretrieve.training.settings import TrainSettings

    data, configured = _training_data(
        dataset,
        split,
        datasets_root,
        pairs,
        corpus,
        collection,
        clicks,
        root,
        pseudo_queries,
        seed,
        cut,
    )
    if target not in (None, "embedder", "reranker"):
        raise InputError("--target is embedder or reranker", field="target")
    count = negatives if negatives is not None else (7 if target == "reranker" else 1)
    mining = (
        None
        if mine == "none"
        else MiningSettings(
            method=mine,  # type: ignore[arg-type]
            count=count,
            skip_top=skip_top,
            relative_margin=margin,
        )
    )
    if teacher is None and data.supervision == "pseudo-queries" and target != "reranker":
        teacher = "default"
    if teacher in ("none", ""):
        teacher = None
    if teacher == "default":  # a collection's configured reranker, else the offline one
        teacher = configured or DEFAULT_RERANKER
    settings = TrainSettings(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        loss=loss,  # type: ignore[arg-type]
        temperature=temperature,
        max_length=max_length,
        precision=precision,  # type: ignore[arg-type]
        seed=seed,
        held_out=held_out,
        lora=lora,
        keep_rejected=keep_rejected,
        keep_best=not keep_last,
        resume=not restart,
        device=device,
    )
    result = finetune(
        model,
        data,
        out,
        target=target,  # type: ignore[arg-type]
        mining=mining,
        teacher=teacher,
        settings=settings,
        report=lambda line: typer.echo(line, err=True),
    )
    held = result.record["held_out"]
    typer.echo(
        f"wrote {out}: held-out ndcg@10 {held['base']:.4f} -> {held['tuned']:.4f} "
        f"({held['gain']:+.4f}) in {held['seconds']:.0f} s, {held['examples_per_second']:.1f} "
        f"examples/s; use it as dense:{out} / --model {out}",
        err=True,
    )
    summary = {k: v for k, v in result.record.items() if k != "held_out"}
    summary["held_out"] = {k: v for k, v in held.items() if k != "log"}
    sys.stdout.write(json.dumps({"out": str(out), **summary}, ensure_ascii=False) + "\n")


def _training_data(
    dataset: Path | None,
    split: str,
    datasets_root: Path | None,
    pairs: Path | None,
    corpus: Path | None,
    collection: str | None,
    clicks: Path | None,
    root: Path | None,
    pseudo_queries: int,
    seed: int,
    cut: str = "lead",
) -> tuple[Any, str | None]:
    """The training data, and the reranker a collection is configured with (the default
    teacher for its pseudo-queries)."""
    from omniretrieve.errors import InputError
    from omniretrieve.training import data_sources

    given = [
        n
        for n, v in (("--dataset", dataset), ("--pairs", pairs), ("--collection", collection))
        if v
    ]
    if corpus is not None and not pairs:
        given.append("--corpus")
    if len(given) != 1:
        raise InputError(
            "give one source of training data: --dataset DIR [--split train], --pairs FILE "
            "[--corpus FILE], --corpus FILE (unsupervised) or --collection NAME [--clicks FILE]"
            + (f" (got {' and '.join(given)})" if given else ""),
            field="data",
        )
    if clicks is not None and collection is None:
        raise InputError("--clicks goes with --collection", field="clicks")
    if dataset is not None:
        from omniretrieve.cli.eval_command import resolve_dataset

        root_dir = resolve_dataset(dataset, datasets_root)
        if split == "test":
            typer.echo(
                "warning: training on the test split: an evaluation on it then says nothing",
                err=True,
            )
        return data_sources.from_beir(root_dir, split), None
    if pairs is not None:
        return data_sources.from_pairs(pairs, corpus), None
    if corpus is not None:
        return data_sources.from_corpus(
            corpus,
            count=pseudo_queries,
            seed=seed,
            cut=cut,  # type: ignore[arg-type]
        ), None
    from omniretrieve.index.collection import Collection

    opened = Collection.open(str(collection), root=root, read_only=True)
    try:
        data = data_sources.from_collection(
            opened,
            clicks=clicks,
            count=pseudo_queries,
            seed=seed,
            cut=cut,  # type: ignore[arg-type]
        )
        return data, opened.settings.reranker
    finally:
        opened.close()
