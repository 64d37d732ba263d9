"""embed, rerank, models, demo."""

from __future__ import annotations

import json
import sys

import typer

from omniretrieve.cli.app import app, models_app
from omniretrieve.cli.common import (
    dtype_option,
    gather_inputs,
    handle_errors,
    note_truncation,
    write_json,
)


@app.command()
@handle_errors
def embed(
    texts: list[str] = typer.Argument(None, help="Texts to embed (or use --file / stdin)."),
    file: str = typer.Option(None, "--file", "-f", help="One text per line; .jsonl: JSON items."),
    model: str = typer.Option("all-MiniLM-L6-v2", "--model", "-m", help="Model id or directory."),
    task: str = typer.Option(None, help="retrieval.query, retrieval.passage, text-matching, ..."),
    instruction: str = typer.Option(None, help="Custom instruction/prompt prefix."),
    dimensions: int = typer.Option(None, help="Matryoshka truncation (re-normalised)."),
    embedding_type: str = typer.Option(
        "float", "--embedding-type", help="float, base64, binary, ubinary, int8 or uint8."
    ),
    normalize: bool = typer.Option(True, "--normalize/--no-normalize"),
    return_sparse: bool = typer.Option(
        False, "--return-sparse", help="Add learned token weights (BGE-M3) as 'sparse'."
    ),
    return_multivector: bool = typer.Option(
        False,
        "--return-multivector",
        help="Add one vector per token (BGE-M3, ColBERT, ColPali) as 'embeddings'.",
    ),
    jsonl: bool = typer.Option(False, "--jsonl", help="One JSON object per input."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1 ..."),
    dtype: str = dtype_option(),
) -> None:
    """Embed texts; JSON on stdout with a 'truncated' flag per input."""
    from omniretrieve.embedder import Embedder

    items = gather_inputs(texts, file)
    embedder = Embedder(model, device=device, dtype=dtype)
    result = embedder.encode(
        items,
        task=task,
        instruction=instruction,
        dimensions=dimensions,
        normalize=normalize,
        embedding_type=embedding_type,
        return_sparse=return_sparse,
        return_multivector=return_multivector,
    )
    write_json(result.to_json(), "data", jsonl)
    note_truncation(result.truncated, embedder.max_length)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)


@app.command()
@handle_errors
def rerank(
    query: str = typer.Argument(..., help="The query (with --query-image: an image file)."),
    documents: list[str] = typer.Argument(None, help="Documents (or use --file / stdin)."),
    file: str = typer.Option(
        None, "--file", "-f", help='One document per line; .jsonl: items ({"image": path} too).'
    ),
    model: str = typer.Option(
        "omniretrieve-hybrid-reranker", "--model", "-m", help="Reranker id or directory."
    ),
    query_image: bool = typer.Option(
        False, "--query-image", help="The query is an image file (image-capable rerankers)."
    ),
    top_n: int = typer.Option(None, "--top-n", help="Keep the best N."),
    instruction: str = typer.Option(
        None, "--instruction", help="For rerankers that take one (Qwen3-Reranker)."
    ),
    raw_scores: bool = typer.Option(
        False, "--raw-scores", help="Add each result's raw_score (the logit before squashing)."
    ),
    return_documents: bool = typer.Option(True, "--documents/--no-documents"),
    jsonl: bool = typer.Option(False, "--jsonl", help="One JSON object per result."),
    device: str = typer.Option("cpu"),
    dtype: str = typer.Option("auto"),
) -> None:
    """Rank documents for a query; JSON results best first, each with its original index."""
    from omniretrieve.reranker import Reranker

    items = gather_inputs(documents, file)
    reranker = Reranker(model, device=device, dtype=dtype)
    asked = {"image": query} if query_image else query
    response = reranker.rerank(
        asked,
        items,
        top_n=top_n,
        return_documents=return_documents,
        instruction=instruction,
        raw_scores=raw_scores,
    )
    write_json(response.to_json(), "results", jsonl)
    note_truncation([r.truncated for r in response.results], None)


@models_app.callback(invoke_without_command=True)
def models_list(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="JSON instead of a table."),
    show_all: bool = typer.Option(False, "--all", help="Also list unsupported cached models."),
) -> None:
    """List bundled models and models in the Hugging Face cache."""
    if ctx.invoked_subcommand is not None:
        return
    _list_models(as_json, show_all)


@handle_errors
def _list_models(as_json: bool, show_all: bool) -> None:
    from dataclasses import asdict

    from omniretrieve.models.registry import default_registry

    rows = default_registry().list_local(include_unsupported=show_all)
    if as_json:
        sys.stdout.write(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "family", "kind", "modality", "dim", "source", "location")
    for r in rows:
        table.add_row(
            r.model_id,
            r.family,
            r.kind,
            ",".join(r.modalities),
            str(r.dimension or "-"),
            r.source,
            r.location,
        )
    Console(width=200).print(table)


@models_app.command("pull")
@handle_errors
def models_pull(model_id: str = typer.Argument(..., help="Hub id, e.g. BAAI/bge-code-v1.")) -> None:
    """Download a model into the Hugging Face cache (needs a network) and check its family."""
    from omniretrieve.models.registry import CheckpointInfo, default_registry, pull

    path = pull(model_id)
    family = default_registry().detect(CheckpointInfo.read(path))
    typer.echo(f"{model_id}: {family.name} ({family.kind}) at {path}")


@app.command()
@handle_errors
def demo() -> None:
    """Embed and rerank a few sentences with the bundled models (no network needed)."""
    from omniretrieve.embedder import Embedder
    from omniretrieve.reranker import Reranker

    documents = [
        "Aspirin irreversibly inhibits cyclooxygenase, reducing thromboxane production.",
        "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
        "Low-dose aspirin lowers the risk of a second heart attack in some patients.",
        "Python lists are dynamic arrays with amortised constant-time appends.",
    ]
    query = "Does aspirin prevent heart attacks?"
    embedder = Embedder()
    vectors = embedder.encode_texts(documents, task="retrieval.passage")
    query_vector = embedder.encode_texts([query], task="retrieval.query")[0]
    typer.echo(f"query: {query}")
    typer.echo(f"\ndense similarity ({embedder.model_id}, {embedder.dimension} dims):")
    for score, doc in sorted(zip(vectors @ query_vector, documents, strict=True), reverse=True):
        typer.echo(f"  {score:.3f}  {doc}")
    response = Reranker(embedding_model=embedder.model).rerank(query, documents)
    typer.echo(f"\nreranked ({response.model}):")
    for result in response.results:
        typer.echo(f"  {result.relevance_score:.3f}  [{result.index}] {documents[result.index]}")
