"""index, search, collections."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from omniretrieve.cli.app import app, collections_app
from omniretrieve.cli.common import (
    api_key_option,
    dtype_option,
    handle_errors,
    parse_filters,
    server_option,
    write_json,
)
from omniretrieve.cli.hits_table import SNIPPET_CHARS, print_hits
from omniretrieve.cli.remote import RemoteServer, image_data_uri
from omniretrieve.errors import InputError
from omniretrieve.inputs import ImageInput
from omniretrieve.models.base import check_dtype

FORMATS = ("table", "json", "jsonl")


@app.command()
@handle_errors
def search(
    name: str = typer.Argument(..., help="Collection name."),
    query: str = typer.Argument(None, help="The query's text (optional with --query-image)."),
    query_image: Path = typer.Option(
        None, "--query-image", help="An image file to search with (alone, or with QUERY)."
    ),
    top_k: int = typer.Option(10, "--top-k", "-k"),
    mode: str = typer.Option("hybrid", help="dense, sparse or hybrid."),
    rerank: bool = typer.Option(False, "--rerank", help="Rerank the first stage's candidates."),
    reranker: str = typer.Option(None, help="Reranker id (default: the collection's)."),
    filters: list[str] = typer.Option(
        None, "--filter", help='key=value, key=["a","b"] (any of) or key=3 (JSON values).'
    ),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
    output: str = typer.Option(
        None,
        "--format",
        help="table (the best passage of each hit; the default on a terminal), json (the "
        "default otherwise) or jsonl (one hit a line).",
    ),
    jsonl: bool = typer.Option(False, "--jsonl", help="The same as --format jsonl."),
    max_chars: int = typer.Option(
        None,
        "--max-chars",
        help="Text per hit: this much from its best passage (the table shows 240 unless told).",
    ),
    diversity: float = typer.Option(
        None,
        "--diversity",
        help="MMR's lambda in [0, 1]: 1 keeps the order, lower values favour hits unlike "
        "those above them.",
    ),
    collapse_duplicates: bool = typer.Option(
        False, "--collapse-duplicates", help="Fold near-identical hits into the best of them."
    ),
    server: str = server_option(
        "Ask a running `omniretrieve serve` (http://127.0.0.1:8000) instead of loading the "
        "models here"
    ),
    api_key: str = api_key_option(),
    dtype: str = dtype_option(),
) -> None:
    """Search a collection with a text, an image, or both: hits best first, with the scores
    of each stage."""
    if query is None and query_image is None:
        raise InputError("give a QUERY, a --query-image, or both", field="query")
    shown_as = _output_format(output, jsonl)
    check_dtype(dtype)
    if query_image is not None and not query_image.is_file():
        raise InputError(f"--query-image {query_image} is not a file", field="query_image")
    if max_chars is None and shown_as == "table":
        max_chars = SNIPPET_CHARS
    asked = AskedSearch(
        query,
        query_image,
        top_k,
        mode,
        reranker or rerank,
        parse_filters(filters),
        max_chars,
        diversity,
        collapse_duplicates,
    )
    if server:
        payload = _search_server(server, api_key, name, asked)
    else:
        payload = _search_here(name, asked, root, dtype)
    for stage, note in payload.get("query_notes", {}).items():
        typer.echo(f"note: {stage} {note}", err=True)
    if shown_as == "table":
        print_hits(payload)
    else:
        write_json(payload, "hits", shown_as == "jsonl")


def _output_format(output: str | None, jsonl: bool) -> str:
    if jsonl:
        if output not in (None, "jsonl"):
            raise InputError(f"--jsonl and --format {output}: choose one", field="format")
        return "jsonl"
    if output is None:
        return "table" if sys.stdout.isatty() else "json"
    if output not in FORMATS:
        raise InputError(
            f"--format {output!r}: expected one of {', '.join(FORMATS)}", field="format"
        )
    return output


@dataclass(frozen=True)
class AskedSearch:
    """One search as the command line asked it, run here or on a server."""

    query: str | None
    query_image: Path | None
    top_k: int
    mode: str
    rerank: bool | str
    filter: dict[str, Any] | None
    max_chars: int | None
    diversity: float | None = None
    collapse_duplicates: bool = False

    def shown_query(self) -> Any:
        """The query as the answer repeats it (an image by its path)."""
        if self.query_image is None:
            return self.query
        return {"text": self.query, "image": str(self.query_image)}


def _search_here(name: str, asked: AskedSearch, root: Path | None, dtype: str) -> dict[str, Any]:
    from omniretrieve.index.collection import Collection
    from omniretrieve.index.queries import SearchQuery

    image = None if asked.query_image is None else ImageInput(asked.query_image.read_bytes())
    with Collection.open(name, root=root, read_only=True) as collection:
        collection.options.dtype = dtype
        report = collection.search_report(
            SearchQuery(asked.query or "", image),
            top_k=asked.top_k,
            mode=asked.mode,
            rerank=asked.rerank,
            filter=asked.filter,
            max_chars=asked.max_chars,
            diversity=asked.diversity,
            collapse_duplicates=asked.collapse_duplicates,
        )
    return {
        "collection": name,
        "query": asked.shown_query(),
        **report.read.to_json(),
        "took_ms": round(report.seconds * 1000, 1),
        "hits": [h.to_json() for h in report.hits],
    }


def _search_server(url: str, api_key: str | None, name: str, asked: AskedSearch) -> dict[str, Any]:
    query: Any = asked.query
    if asked.query_image is not None:
        query = {"image": image_data_uri(asked.query_image)}
        if asked.query:
            query["text"] = asked.query
    body: dict[str, Any] = {
        "query": query,
        "top_k": asked.top_k,
        "mode": asked.mode,
        "rerank": asked.rerank,
    }
    if asked.filter is not None:
        body["filter"] = asked.filter
    if asked.max_chars is not None:
        body["max_chars"] = asked.max_chars
    if asked.diversity is not None:
        body["diversity"] = asked.diversity
    if asked.collapse_duplicates:
        body["collapse_duplicates"] = True
    with RemoteServer(url, api_key) as remote:
        payload = remote.search(name, body)
    if asked.query_image is not None:  # the image by its path, not the data URI sent
        payload["query"] = asked.shown_query()
    return {**payload, "server": remote.url}


@collections_app.callback(invoke_without_command=True)
def collections_list(
    ctx: typer.Context,
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
) -> None:
    """List collections."""
    if ctx.invoked_subcommand is not None:
        return
    from omniretrieve.index.collection import Collection

    sys.stdout.write(json.dumps(Collection.names(root)) + "\n")


@collections_app.command("drop")
@handle_errors
def collections_drop(
    name: str = typer.Argument(...),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask; drop it."),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
) -> None:
    """Delete a collection and its files (asks first unless --yes)."""
    from omniretrieve.index.catalog import missing_collection
    from omniretrieve.index.collection import Collection

    if name not in Collection.names(root):
        raise missing_collection(name, root)
    if not yes:
        if not sys.stdin.isatty():
            raise InputError(
                f"dropping {name!r} deletes its documents: pass --yes to confirm", field="yes"
            )
        if not typer.confirm(f"Drop collection {name!r} and all its documents?", err=True):
            typer.echo("kept", err=True)
            raise typer.Exit(1)
    Collection.drop(name, root=root)
    typer.echo(f"dropped {name}", err=True)


@collections_app.command("documents")
@handle_errors
def collections_documents(
    name: str = typer.Argument(..., help="Collection name."),
    offset: int = typer.Option(0, "--offset", help="Skip this many documents (id order)."),
    limit: int = typer.Option(100, "--limit", help="Documents per page (at most 1000)."),
    jsonl: bool = typer.Option(
        False, "--jsonl", help="Every document from --offset, one JSON line each (an export)."
    ),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
) -> None:
    """List a collection's documents in id order: a page as JSON, or all of them as JSON
    lines (--jsonl, which `index --from` reads back)."""
    from omniretrieve.index.collection import Collection

    with Collection.open(name, root=root, read_only=True) as collection:
        if jsonl:
            for position, document in enumerate(collection.iter_documents()):
                if position >= offset:
                    sys.stdout.write(json.dumps(document.to_json(), ensure_ascii=False) + "\n")
            return
        page = collection.list_documents(offset, limit)
    payload = {
        "collection": name,
        "total": page.total,
        "offset": page.offset,
        "documents": [d.to_json() for d in page.documents],
    }
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


@collections_app.command("delete")
@handle_errors
def collections_delete(
    name: str = typer.Argument(..., help="Collection name."),
    ids: list[str] = typer.Argument(..., help="Ids of the documents to delete."),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
) -> None:
    """Delete documents by id (ids not in the collection are listed as missing)."""
    from omniretrieve.index.collection import Collection

    with Collection.open(name, root=root) as collection:
        missing = [doc_id for doc_id in dict.fromkeys(ids) if collection.get(doc_id) is None]
        deleted = collection.delete(ids)
        collection.flush()
    payload = {"collection": name, "deleted": deleted, "missing": missing}
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")


@collections_app.command("repair")
@handle_errors
def collections_repair(
    name: str = typer.Argument(..., help="Collection name."),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
) -> None:
    """Accept what Milvus still holds of a collection whose documents Milvus alone holds,
    after its data was lost or damaged (opening refuses such a collection until then)."""
    from omniretrieve.index.collection import Collection

    with Collection.open(name, root=root, repair=True) as collection:
        count = len(collection)
    sys.stdout.write(json.dumps({"collection": name, "documents": count}) + "\n")


@collections_app.command("show")
@handle_errors
def collections_show(
    name: str = typer.Argument(..., help="Collection name."),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
) -> None:
    """A collection's settings, size and self-tuned fusion (every candidate weighting with
    its pseudo-query score, and the reranker decision)."""
    from omniretrieve.index.collection import Collection
    from omniretrieve.index.settings import settings_json

    with Collection.open(name, root=root, read_only=True) as collection:
        tuning = collection.tuning()
        payload = {
            "collection": name,
            "documents": len(collection),
            "settings": settings_json(collection.settings),
            "tuning": tuning.to_json() if tuning is not None else None,
        }
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")


@collections_app.command("tune")
@handle_errors
def collections_tune(
    name: str = typer.Argument(..., help="Collection name."),
    dataset: Path = typer.Option(
        None,
        "--dataset",
        "-d",
        help="A BEIR folder whose corpus this collection holds: fit on its --split queries "
        "instead of pseudo-queries.",
    ),
    split: str = typer.Option("train", help="With --dataset: the split whose queries choose."),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
    auto: bool = typer.Option(
        False, "--auto", help="With --dataset: fit for searches that route by query language."
    ),
    queries: int = typer.Option(400, "--queries", help="Pseudo-queries to draw."),
    seed: int = typer.Option(0, "--seed", help="Which documents the pseudo-queries come from."),
) -> None:
    """Fit the collection's fusion and save it: on pseudo-queries drawn from its own
    documents (no labels; what upserts do on their own with fusion auto), or with --dataset
    on a labelled split's queries (saved as fixed fusion_weights)."""
    from omniretrieve.index.collection import Collection

    if dataset is None:
        if queries < 1:
            raise InputError("--queries must be a positive integer", field="queries")
        with Collection.open(name, root=root) as collection:
            fitted = collection.tune(queries=queries, seed=seed, show_progress=True)
            fusion = collection.settings.fusion
        rerank = fitted.rerank
        payload: dict[str, Any] = {
            "collection": name,
            "fusion": fusion,
            "method": fitted.method,
            "fusion_weights": list(fitted.weights),
            "pseudo_queries": fitted.queries,
            "pseudo_ndcg@10": fitted.ndcg,
            "equal_weights_pseudo_ndcg@10": fitted.equal_ndcg,
            "alone": fitted.alone,
            "rerank": None
            if rerank is None
            else {
                "reranker": rerank.reranker,
                "first_stage_share": rerank.first_stage_share,
                "used": rerank.used,
                "pseudo_ndcg@10": rerank.ndcg,
                "without": rerank.ndcg_without,
            },
            "seconds": fitted.seconds,
        }
        if fusion != "auto":
            typer.echo(
                f"note: collection {name!r} has fusion {fusion!r}: the fit is saved but used "
                "only with fusion auto (Collection.update_settings(fusion='auto'))",
                err=True,
            )
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    _tune_on_dataset(name, dataset, split, root, auto)


def _tune_on_dataset(name: str, dataset: Path, split: str, root: Path | None, auto: bool) -> None:
    from omniretrieve.eval.layouts import load_eval_dataset
    from omniretrieve.eval.tuning import fit_fusion_weights
    from omniretrieve.index.collection import Collection

    task = load_eval_dataset(dataset, split=split).tasks[0]
    with Collection.open(name, root=root) as collection:
        unknown = [d for q in task.qrels.values() for d in q if collection.get(d) is None]
        if unknown:
            raise InputError(
                f"{len(unknown)} judged documents are not in collection {name!r} "
                f"(e.g. {unknown[0]!r}): index the dataset's corpus first",
                field="dataset",
            )
        fit = fit_fusion_weights(
            collection, task.queries, task.qrels, route_by_language=auto, show_progress=True
        )
        collection.update_settings(fusion_weights=fit.weights)
    payload = {
        "collection": name,
        "fusion_weights": list(fit.weights),
        "metric": fit.metric,
        "train_score": fit.score,
        "grid": {str(k): v for k, v in fit.grid.items()},
        "queries": fit.queries,
    }
    sys.stdout.write(json.dumps(payload) + "\n")


@collections_app.command("reembed")
@handle_errors
def collections_reembed(
    name: str = typer.Argument(..., help="Collection name."),
    embedder: str = typer.Option(
        ..., "--embedder", help="The new embedder: a fine-tuned directory, a bundled or hub id."
    ),
    replacing: str = typer.Option(
        None, "--replace", help="The embedder it replaces (default: the collection's only one)."
    ),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
    dtype: str = dtype_option(),
) -> None:
    """Move a collection to another embedder (one fine-tuned on it): the new vectors are built
    beside the old, the settings switch atomically, the old vectors are dropped after. The
    self-tuned fusion is dropped with the old model (collections tune fits it again)."""
    from omniretrieve.index.collection import Collection

    collection = Collection.open(name, root=root)
    collection.options.dtype = dtype
    try:
        report = collection.reembed(embedder, replacing=replacing, show_progress=True)
    finally:
        collection.close()
    sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
