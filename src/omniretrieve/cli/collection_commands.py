"""index, search, collections."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from omniretrieve.checks import MAX_TEXT_CHARS
from omniretrieve.cli.app import app, collections_app
from omniretrieve.cli.common import dtype_option, handle_errors, parse_filters, write_json
from omniretrieve.errors import InputError
from omniretrieve.inputs import ImageInput
from omniretrieve.models.base import check_dtype


@app.command()
@handle_errors
def index(
    name: str = typer.Argument(..., help="Collection name (created if missing)."),
    source: Path = typer.Option(..., "--from", help="A BEIR corpus .jsonl or a folder of files."),
    embedder: list[str] = typer.Option(
        None, "--embedder", "-e", help="Embedder(s) of a new collection (default MiniLM)."
    ),
    quantization: str = typer.Option("float", help="float, int8 or binary (new collection)."),
    language: str = typer.Option(
        "auto",
        help="BM25 analysis of a new collection: auto (each document and query in its own "
        "language) or one language for all (english, german, ...).",
    ),
    vector_store: str = typer.Option(
        "faiss", "--vector-store", help="faiss (in process) or milvus (new collection)."
    ),
    milvus_uri: str = typer.Option(
        None, "--milvus-uri", help="Milvus server/cluster (default: Milvus Lite in the folder)."
    ),
    sparse: str = typer.Option(
        "local",
        "--sparse",
        help="Where BM25 runs: local (in process) or milvus (Milvus's full-text search, with "
        "--vector-store milvus; new collection).",
    ),
    storage: str = typer.Option(
        "folder",
        "--storage",
        help="Where the documents live: folder (the collection's folder, read into memory) or "
        "milvus (Milvus alone, with --vector-store milvus --sparse milvus: this process's "
        "memory does not grow with the corpus; new collection).",
    ),
    root: Path = typer.Option(None, help="Where collections live (default: user data dir)."),
    ocr: bool = typer.Option(True, "--ocr/--no-ocr", help="Read images and scanned PDF pages."),
    ocr_engine: str = typer.Option("tesseract", help="tesseract or rapidocr."),
    follow_symlinks: bool = typer.Option(
        False, "--follow-symlinks", help="Follow symlinks that leave the folder."
    ),
    max_chars: int = typer.Option(
        MAX_TEXT_CHARS, "--max-chars", help="Longest document text; longer files are skipped."
    ),
    dtype: str = dtype_option(),
    workers: int = typer.Option(
        1, "--workers", help="Embed documents in this many local processes (1: in this one)."
    ),
    dask_scheduler: str = typer.Option(
        None,
        "--dask-scheduler",
        help="Embed documents on the workers of a running Dask cluster (tcp://host:8786); "
        "needs omniretrieve[distributed]. No cluster is ever started.",
    ),
) -> None:
    """Index documents into a collection (upsert by id; unchanged documents are skipped).

    --from takes a BEIR corpus .jsonl, a folder (text, Markdown, code, images, PDFs), or one
    image or PDF file. A file that cannot be read (not UTF-8, over --max-chars, a symlink out
    of the folder) is reported and skipped (exit code 2 at the end); everything else is
    indexed."""
    from omniretrieve.index.collection import Collection, CollectionSettings
    from omniretrieve.index.documents import iter_folder_documents, iter_jsonl_documents
    from omniretrieve.index.settings import default_root, read_settings
    from omniretrieve.index.store import CollectionStore
    from omniretrieve.ingest.files import SkippedFile
    from omniretrieve.ingest.visual import VISUAL_SUFFIXES, visual_files

    check_dtype(dtype)
    skipped: list[SkippedFile] = []
    if source.is_dir():
        documents = list(
            iter_folder_documents(
                source, skipped=skipped, follow_symlinks=follow_symlinks, max_chars=max_chars
            )
        )
        files = visual_files(source, skipped=skipped, follow_symlinks=follow_symlinks)
        documents += _visual(files, source, ocr, ocr_engine, skipped)
    elif source.is_file() and source.suffix.lower() in VISUAL_SUFFIXES:
        documents = _visual([source], source.parent, ocr, ocr_engine, skipped)
    elif source.is_file():
        documents = list(iter_jsonl_documents(source))
    else:
        raise InputError(f"{source}: no such file or folder", field="from")
    if workers != 1 and dask_scheduler:
        raise InputError("--workers or --dask-scheduler, not both", field="workers")
    if name in Collection.names(root):
        settings = read_settings(CollectionStore((root or default_root()) / name))
    else:
        settings = CollectionSettings(
            embedders=tuple(embedder or ("all-MiniLM-L6-v2",)),
            quantization=quantization,
            language=language,
            vector_store=vector_store,  # type: ignore[arg-type]
            milvus_uri=milvus_uri,
            sparse=sparse,  # type: ignore[arg-type]
            storage=storage,  # type: ignore[arg-type]
        ).validate()
    pool, embedders = _embedding_pool(settings.embedders, dtype, workers, dask_scheduler)
    if name in Collection.names(root):
        collection = Collection.open(name, root=root, embedders=embedders)
    else:
        collection = Collection.create(name, root=root, settings=settings, embedders=embedders)
    with collection, _closing(pool):
        collection.options.max_text_chars = max_chars
        collection.options.dtype = dtype
        report = collection.upsert(documents, show_progress=True)
        collection.flush()
        payload = {"collection": name, "documents": len(collection), **report.__dict__}
        tuning = collection.tuning() if collection.settings.fusion == "auto" else None
        if tuning is not None:  # what searches fuse with (see `collections show`)
            payload["fusion"] = {
                "method": tuning.method,
                "weights": dict(zip(("bm25", *tuning.embedders), tuning.weights, strict=True)),
                "rerank_first_stage_share": None
                if tuning.rerank is None
                else tuning.rerank.first_stage_share,
            }
    skipped.sort(key=lambda item: item.path)
    payload["skipped"] = [{"path": s.path, "error": s.error} for s in skipped]
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    for item in skipped:
        typer.echo(f"error: {item.path}: {item.error}", err=True)
    if skipped:
        raise typer.Exit(2)


def _visual(
    files: list[Path], base: Path, ocr: bool, engine: str, skipped: list
) -> list[dict[str, Any]]:
    """Documents of image and PDF files (OCR where a page has no text layer)."""
    from omniretrieve.ingest.visual import visual_documents
    from omniretrieve.ocr.engines import OcrUnavailableError
    from omniretrieve.ocr.reader import OcrReader

    if not files:
        return []
    reader = None
    if ocr:
        try:
            reader = OcrReader(engine)
        except OcrUnavailableError as exc:
            typer.echo(f"note: {exc.message}", err=True)
    return visual_documents(files, base=base, reader=reader, skipped=skipped, show_progress=True)


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
        hits = collection.search(
            searched,
            top_k=top_k,
            mode=mode,
            rerank=reranker or rerank,
            filter=parse_filters(filters),
            max_chars=max_chars,
        )
    shown = query if image is None else {"text": query, "image": str(query_image)}
    payload = {"collection": name, "query": shown, "hits": [h.to_json() for h in hits]}
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


def _embedding_pool(
    model_ids: tuple[str, ...], dtype: str, workers: int, dask_scheduler: str | None
) -> tuple[Any, dict[str, Any] | None]:
    """With ``--workers N`` (N > 1) or ``--dask-scheduler``, the pool and the collection's
    embedders that embed documents on it; else (None, None): embedding in this process."""
    if workers < 1:
        raise InputError("--workers must be a positive integer", field="workers")
    if (workers == 1 and not dask_scheduler) or not model_ids:
        return None, None
    from omniretrieve.embedder import Embedder
    from omniretrieve.index.workers import DaskPool, PooledEmbedder, ProcessPool

    pool = DaskPool(dask_scheduler) if dask_scheduler else ProcessPool(workers)
    embedders = {m: PooledEmbedder(Embedder(m, dtype=dtype), pool, reference=m) for m in model_ids}
    return pool, embedders


@contextmanager
def _closing(pool: Any) -> Iterator[None]:
    try:
        yield
    finally:
        if pool is not None:
            pool.close()
