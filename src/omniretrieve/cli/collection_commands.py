"""index, search, collections."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from omniretrieve.cli.app import app, collections_app
from omniretrieve.cli.common import dtype_option, handle_errors, parse_filters, write_json
from omniretrieve.errors import InputError
from omniretrieve.inputs import ImageInput
from omniretrieve.models.base import check_dtype


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
    filters: list[str] = typer.Option(None, "--filter", help='key=value, or key=["a","b"].'),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
    jsonl: bool = typer.Option(False, "--jsonl", help="One JSON object per hit."),
    max_chars: int = typer.Option(
        None, "--max-chars", help="Text per hit: this much from its best passage."
    ),
    dtype: str = dtype_option(),
) -> None:
    """Search a collection with a text, an image, or both; JSON hits best first with
    per-stage scores."""
    from omniretrieve.index.collection import Collection
    from omniretrieve.index.queries import SearchQuery

    if query is None and query_image is None:
        raise InputError("give a QUERY, a --query-image, or both", field="query")
    check_dtype(dtype)
    image = None
    if query_image is not None:
        if not query_image.is_file():
            raise InputError(f"--query-image {query_image} is not a file", field="query_image")
        image = ImageInput(query_image.read_bytes())
    searched = SearchQuery(query or "", image)
    with Collection.open(name, root=root, read_only=True) as collection:
        collection.options.dtype = dtype
        report = collection.search_report(
            searched,
            top_k=top_k,
            mode=mode,
            rerank=reranker or rerank,
            filter=parse_filters(filters),
            max_chars=max_chars,
        )
    shown = query if image is None else {"text": query, "image": str(query_image)}
    payload = {
        "collection": name,
        "query": shown,
        **report.read.to_json(),
        "took_ms": round(report.seconds * 1000, 1),
        "hits": [h.to_json() for h in report.hits],
    }
    for stage, note in report.read.notes.items():
        typer.echo(f"note: {stage} {note}", err=True)
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

    sys.stdout.write(json.dumps(Collection.names(root)) + "\n")


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
