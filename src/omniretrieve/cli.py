"""The ``omniretrieve`` command line: embed, rerank, models (and more as features land).

Results are JSON (or JSON lines with ``--jsonl``) on stdout; progress bars and notes go to
stderr; a problem is one ``error: ...`` line on stderr and a non-zero exit (2 for bad input,
1 for anything else), never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from omniretrieve import __version__
from omniretrieve.errors import InputError, OmniRetrieveError

app = typer.Typer(
    name="omniretrieve",
    help="Self-hosted embeddings, reranking and retrieval evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List local models or pull one from the hub.", no_args_is_help=False)
app.add_typer(models_app, name="models")
collections_app = typer.Typer(help="List or drop collections.", no_args_is_help=False)
app.add_typer(collections_app, name="collections")

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def handle_errors(command: F) -> F:
    """Turn library errors into one line on stderr and an exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except InputError as exc:
            _fail(exc.message, 2)
        except OmniRetrieveError as exc:
            _fail(exc.message, 1)
        except KeyboardInterrupt:
            _fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]


# -- reading inputs -----------------------------------------------------------------------
def read_text_file(path: str) -> str:
    """A whole file (or stdin for ``-``) as UTF-8, with a clear error otherwise."""
    if path == "-":
        data = sys.stdin.buffer.read()
        label = "standard input"
    else:
        target = Path(path)
        if not target.is_file():
            raise InputError(f"{path}: no such file", field="file")
        data = target.read_bytes()
        label = path
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{label} is not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it first, e.g. iconv -f latin1 -t utf-8",
            field="file",
        ) from exc


def read_items(path: str) -> list[Any]:
    """Items of a file: JSON lines (strings or {"text"|"image"} objects) for ``.jsonl``,
    otherwise one text per non-blank line."""
    content = read_text_file(path)
    if path.endswith(".jsonl"):
        items = []
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except ValueError as exc:
                raise InputError(f"{path}:{number}: not valid JSON ({exc})", field="file") from exc
        return items
    return [line for line in content.splitlines() if line.strip()]


def gather_inputs(arguments: list[str] | None, file: str | None) -> list[Any]:
    items: list[Any] = list(arguments or [])
    if file is not None:
        items.extend(read_items(file))
    elif not items and not sys.stdin.isatty():
        items.extend(read_items("-"))
    if not items:
        raise InputError("no input: pass texts as arguments, --file PATH, or pipe them on stdin")
    return items


def write_json(payload: dict[str, Any], rows_key: str, jsonl: bool) -> None:
    if jsonl:
        for row in payload[rows_key]:
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


def note_truncation(flags: list[bool], limit: int | None) -> None:
    count = sum(flags)
    if count:
        where = f" to {limit} tokens" if limit else ""
        typer.echo(f"note: {count} input(s) were truncated{where} (see 'truncated')", err=True)


# -- commands -----------------------------------------------------------------------------
def _version(value: bool) -> None:
    if value:
        typer.echo(f"omniretrieve {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """omniretrieve: embeddings, reranking and retrieval evaluation, offline by default."""


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
    jsonl: bool = typer.Option(False, "--jsonl", help="One JSON object per input."),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:1 ..."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16 or float16."),
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
    )
    write_json(result.to_json(), "data", jsonl)
    note_truncation(result.truncated, embedder.max_length)


@app.command()
@handle_errors
def rerank(
    query: str = typer.Argument(..., help="The query."),
    documents: list[str] = typer.Argument(None, help="Documents (or use --file / stdin)."),
    file: str = typer.Option(None, "--file", "-f", help="One document per line; .jsonl: items."),
    model: str = typer.Option(
        "omniretrieve-hybrid-reranker", "--model", "-m", help="Reranker id or directory."
    ),
    top_n: int = typer.Option(None, "--top-n", help="Keep the best N."),
    return_documents: bool = typer.Option(True, "--documents/--no-documents"),
    jsonl: bool = typer.Option(False, "--jsonl", help="One JSON object per result."),
    device: str = typer.Option("cpu"),
    dtype: str = typer.Option("auto"),
) -> None:
    """Rank documents for a query; JSON results best first, each with its original index."""
    from omniretrieve.reranker import Reranker

    items = gather_inputs(documents, file)
    reranker = Reranker(model, device=device, dtype=dtype)
    response = reranker.rerank(query, items, top_n=top_n, return_documents=return_documents)
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


def parse_filters(values: list[str] | None) -> dict[str, Any] | None:
    """``key=value`` pairs; a JSON value is decoded, and a JSON list means "any of"."""
    if not values:
        return None
    conditions: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"--filter {item!r} must look like key=value", field="filter")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        conditions[key] = {"in": value} if isinstance(value, list) else value
    return conditions


@app.command()
@handle_errors
def index(
    name: str = typer.Argument(..., help="Collection name (created if missing)."),
    source: Path = typer.Option(..., "--from", help="A BEIR corpus .jsonl or a folder of files."),
    embedder: list[str] = typer.Option(
        None, "--embedder", "-e", help="Embedder(s) of a new collection (default MiniLM)."
    ),
    quantization: str = typer.Option("float", help="float, int8 or binary (new collection)."),
    language: str = typer.Option("english", help="BM25 stemmer language (new collection)."),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
) -> None:
    """Index documents into a collection (upsert by id; unchanged documents are skipped)."""
    from omniretrieve.index.collection import Collection, CollectionSettings
    from omniretrieve.index.documents import iter_folder_documents, iter_jsonl_documents

    if source.is_dir():
        documents = list(iter_folder_documents(source))
    elif source.is_file():
        documents = list(iter_jsonl_documents(source))
    else:
        raise InputError(f"{source}: no such file or folder", field="from")
    if name in Collection.list(root):
        collection = Collection.open(name, root=root)
    else:
        settings = CollectionSettings(
            embedders=tuple(embedder or ("all-MiniLM-L6-v2",)),
            quantization=quantization,
            language=language,
        )
        collection = Collection.create(name, root=root, settings=settings)
    with collection:
        report = collection.upsert(documents, show_progress=True)
        collection.flush()
        payload = {"collection": name, "documents": len(collection), **report.__dict__}
    sys.stdout.write(json.dumps(payload) + "\n")


@app.command()
@handle_errors
def search(
    name: str = typer.Argument(..., help="Collection name."),
    query: str = typer.Argument(..., help="The query."),
    top_k: int = typer.Option(10, "--top-k", "-k"),
    mode: str = typer.Option("hybrid", help="dense, sparse or hybrid."),
    rerank: bool = typer.Option(False, "--rerank", help="Rerank the first stage's candidates."),
    reranker: str = typer.Option(None, help="Reranker id (default: the collection's)."),
    filters: list[str] = typer.Option(None, "--filter", help='key=value, or key=["a","b"].'),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
    jsonl: bool = typer.Option(False, "--jsonl", help="One JSON object per hit."),
) -> None:
    """Search a collection; JSON hits best first with per-stage scores."""
    from omniretrieve.index.collection import Collection

    with Collection.open(name, root=root) as collection:
        hits = collection.search(
            query,
            top_k=top_k,
            mode=mode,
            rerank=reranker or rerank,
            filter=parse_filters(filters),
        )
    payload = {"collection": name, "query": query, "hits": [h.to_json() for h in hits]}
    write_json(payload, "hits", jsonl)


@collections_app.callback(invoke_without_command=True)
def collections_list(
    ctx: typer.Context,
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
) -> None:
    """List collections."""
    if ctx.invoked_subcommand is not None:
        return
    from omniretrieve.index.collection import Collection

    sys.stdout.write(json.dumps(Collection.list(root)) + "\n")


@collections_app.command("drop")
@handle_errors
def collections_drop(
    name: str = typer.Argument(...),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
) -> None:
    """Delete a collection and its files."""
    from omniretrieve.index.collection import Collection

    Collection.drop(name, root=root)
    typer.echo(f"dropped {name}", err=True)


@app.command()
@handle_errors
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind; 0.0.0.0 exposes the server."),
    port: int = typer.Option(8000, help="TCP port."),
    model: list[str] = typer.Option(
        None, "--model", "-m", help="Model id or directory to load (repeat for several)."
    ),
    no_bundled: bool = typer.Option(
        False, "--no-bundled", help="Do not load the bundled models beside --model ones."
    ),
    api_key: list[str] = typer.Option(
        None, "--api-key", help="Accepted API key (visible in ps: prefer the env var or a file)."
    ),
    api_key_file: Path = typer.Option(None, "--api-key-file", help="File of API keys, one a line."),
    cors_origin: list[str] = typer.Option(None, "--cors-origin", help="Allowed CORS origin."),
    device: str = typer.Option("cpu"),
    dtype: str = typer.Option("auto"),
    max_body_bytes: int = typer.Option(32 * 1024 * 1024, help="Largest request body."),
    max_inputs: int = typer.Option(2048, help="Inputs per embeddings request."),
    max_documents: int = typer.Option(1000, help="Documents per rerank request."),
    max_tokens: int = typer.Option(1_000_000, help="Tokens per embeddings request."),
    max_image_bytes: int = typer.Option(20 * 1024 * 1024, help="Bytes per image."),
    max_image_pixels: int = typer.Option(40_000_000, help="Pixels per image."),
    max_pending: int = typer.Option(16_384, help="Queued inputs per model before 429."),
    batch_wait_ms: float = typer.Option(5.0, help="How long a batch waits for more requests."),
    max_batch_items: int = typer.Option(64, help="Inputs merged into one model call at most."),
    no_ocr_fallback: bool = typer.Option(
        False, "--no-ocr-fallback", help="Images sent to text models are a 422 (no OCR)."
    ),
    collections_root: Path = typer.Option(
        None, "--collections-root", help="Where served collections live (default: data dir)."
    ),
    log_level: str = typer.Option("info"),
) -> None:
    """Serve /v1/embeddings, /v1/rerank (Jina), /v2/rerank (Cohere) and more over HTTP."""
    import uvicorn

    from omniretrieve.models.registry import DEFAULT_EMBEDDER, DEFAULT_RERANKER
    from omniretrieve.server.app import create_app
    from omniretrieve.server.config import API_KEYS_ENV, Limits, ServerConfig, read_api_keys

    if api_key:
        typer.echo(
            f"warning: --api-key shows in the process list; prefer ${API_KEYS_ENV} or "
            "--api-key-file",
            err=True,
        )
    models = list(model or [])
    if not no_bundled:
        models += [m for m in (DEFAULT_EMBEDDER, DEFAULT_RERANKER) if m not in models]
    if not models:
        raise InputError("no model to serve: pass --model or drop --no-bundled")
    config = ServerConfig(
        models=tuple(models),
        api_keys=read_api_keys(api_key, api_key_file),
        cors_origins=tuple(cors_origin or ()),
        limits=Limits(
            max_body_bytes=max_body_bytes,
            max_inputs=max_inputs,
            max_documents=max_documents,
            max_tokens_per_request=max_tokens,
            max_image_bytes=max_image_bytes,
            max_image_pixels=max_image_pixels,
            max_pending_items=max_pending,
        ),
        device=device,
        dtype=dtype,
        batch_wait_ms=batch_wait_ms,
        max_batch_items=max_batch_items,
        collections_root=collections_root,
        ocr_fallback=not no_ocr_fallback,
    )
    import logging

    logging.basicConfig(format="%(levelname)s:     %(message)s", level=log_level.upper())
    keys = f"{len(config.api_keys)} API key(s)" if config.api_keys else "no API key"
    typer.echo(
        f"omniretrieve {__version__}: serving {', '.join(models)} on http://{host}:{port} ({keys})",
        err=True,
    )
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=30,
    )


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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
