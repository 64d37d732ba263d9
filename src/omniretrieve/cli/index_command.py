"""``omniretrieve index``: a folder (kept in sync, ``--watch`` to follow it), one image or PDF,
or a BEIR corpus JSONL into a collection."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import typer

from omniretrieve.checks import MAX_TEXT_CHARS
from omniretrieve.cli.app import app
from omniretrieve.cli.common import api_key_option, dtype_option, handle_errors, server_option
from omniretrieve.cli.index_remote import index_on_server
from omniretrieve.errors import InputError
from omniretrieve.models.base import check_dtype


@app.command()
@handle_errors
def index(
    name: str = typer.Argument(..., help="Collection name (created if missing)."),
    source: Path = typer.Option(..., "--from", help="A folder, an image or PDF, or a BEIR .jsonl."),
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
    keep_missing: bool = typer.Option(
        False,
        "--keep-missing",
        help="Keep the documents of files no longer in the folder (by default the collection "
        "is made to match the folder: they are removed).",
    ),
    watch: bool = typer.Option(
        False,
        "--watch",
        help="After indexing the folder, keep the collection in sync with it until Ctrl-C.",
    ),
    debounce_ms: int = typer.Option(
        800, "--debounce-ms", help="With --watch: wait for this quiet time after a change."
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
        "needs the distributed extra (pip install 'omniretrieve[distributed]'). No cluster "
        "is ever started.",
    ),
    server: str = server_option(
        "Send the files to a running `omniretrieve serve` (http://127.0.0.1:8000), which "
        "indexes them with its loaded models"
    ),
    api_key: str = api_key_option(),
) -> None:
    """Index documents into a collection (upsert by id; unchanged documents are skipped).

    --from takes a folder (text, Markdown, HTML, code, images, PDFs; each file's encoding is
    detected), one image or PDF, or a BEIR corpus .jsonl. A folder is kept in sync: documents
    whose file is gone are removed (--keep-missing keeps them), --watch follows changes. A
    file that cannot be read is reported and skipped (exit code 2 at the end); one with
    nothing to index (empty, a photo without text) is reported as skipped (exit code 0);
    everything else is indexed."""
    from omniretrieve.ingest.file_documents import VISUAL_SUFFIXES

    check_dtype(dtype)
    documents: list[Any] = []
    skipped: list[dict[str, Any]] = []
    if workers != 1 and dask_scheduler:
        raise InputError("--workers or --dask-scheduler, not both", field="workers")
    if watch and not source.is_dir():
        raise InputError("--watch follows a folder; --from is not one", field="watch")
    if source.is_dir():
        kind = "folder"
    elif source.is_file() and source.suffix.lower() in VISUAL_SUFFIXES:
        kind = "file"
    elif source.is_file():
        kind = "jsonl"
        documents, skipped = _corpus_documents(source, max_chars)
    else:
        raise InputError(f"{source}: no such file or folder", field="from")
    if server:
        if watch or workers != 1 or dask_scheduler:
            raise InputError(
                "--server indexes with the server's models: --watch, --workers and "
                "--dask-scheduler apply to a local index",
                field="server",
            )
        settings: dict[str, Any] = {
            "quantization": quantization,
            "language": language,
            "vector_store": vector_store,
            "sparse": sparse,
            "storage": storage,
        }
        if embedder:
            settings["embedders"] = list(embedder)
        payload = index_on_server(
            server, api_key, name, source, kind, documents, skipped, settings, follow_symlinks
        )
        _say(payload)
        if any("error" in item for item in payload["skipped"]):
            raise typer.Exit(2)
        return
    options: dict[str, Any] = {
        "embedder": embedder,
        "quantization": quantization,
        "language": language,
        "vector_store": vector_store,
        "milvus_uri": milvus_uri,
        "sparse": sparse,
        "storage": storage,
    }
    collection, pool = _open_collection(name, root, options, dtype, workers, dask_scheduler)
    with collection, _closing(pool):
        collection.options.max_text_chars = max_chars
        collection.options.dtype = dtype
        reader = _ocr_reader(ocr, ocr_engine) if kind != "jsonl" else None
        if watch:  # the first sync, then one after each change, until Ctrl-C
            sync = (reader, follow_symlinks, max_chars, keep_missing)
            _watch(collection, source, sync, debounce_ms)
            return
        if kind == "folder":
            payload = _sync(collection, source, reader, follow_symlinks, max_chars, keep_missing)
        else:
            if kind == "file":
                documents, skipped = _file_documents(collection, source, reader, max_chars)
            report = collection.upsert(documents, show_progress=True)
            payload = {**report.__dict__, "removed": 0, "skipped": skipped}
        collection.flush()
        payload = {"collection": name, "documents": len(collection), **payload}
        payload.update(_fusion(collection))
        _say(payload)
    if any("error" in item for item in payload["skipped"]):
        raise typer.Exit(2)


def _corpus_documents(path: Path, max_chars: int) -> tuple[list[Any], list[dict[str, Any]]]:
    """A BEIR corpus's documents, checked before anything is created: an empty one (BEIR's
    Cranfield holds two) is skipped with its reason, as eval skips it; any other problem is an
    error naming the document, and nothing is indexed."""
    from omniretrieve.index.documents import iter_jsonl_documents, parse_document

    documents, skipped = [], []
    for position, record in enumerate(iter_jsonl_documents(path)):
        if isinstance(record, dict) and not _has_content(record):
            doc_id = record.get("_id", record.get("id", f"line {position + 1}"))
            skipped.append({"path": str(doc_id), "reason": "no text and no image: not indexed"})
            continue
        parse_document(record, position, max_text_chars=max_chars)
        documents.append(record)
    return documents, skipped


def _has_content(record: dict[str, Any]) -> bool:
    """False for a document whose text, title and image are all absent or blank (anything
    else, even a wrongly typed value, goes on to be checked)."""
    parts = (record.get("text"), record.get("title"), record.get("image"))
    return any(not (p is None or (isinstance(p, str) and not p.strip())) for p in parts)


def _open_collection(
    name: str,
    root: Path | None,
    options: dict[str, Any],
    dtype: str,
    workers: int,
    dask_scheduler: str | None,
) -> tuple[Any, Any]:
    from omniretrieve.index.collection import Collection, CollectionSettings
    from omniretrieve.index.settings import default_root, read_settings
    from omniretrieve.index.store import CollectionStore

    exists = name in Collection.names(root)
    if exists:
        settings = read_settings(CollectionStore((root or default_root()) / name))
    else:
        settings = CollectionSettings(
            embedders=tuple(options["embedder"] or ("all-MiniLM-L6-v2",)),
            quantization=options["quantization"],
            language=options["language"],
            vector_store=options["vector_store"],
            milvus_uri=options["milvus_uri"],
            sparse=options["sparse"],
            storage=options["storage"],
        ).validate()
    pool, embedders = _embedding_pool(settings.embedders, dtype, workers, dask_scheduler)
    if exists:  # its models load when something needs embedding (a re-sync may not)
        return Collection.open(name, root=root, embedders=embedders), pool
    if embedders is None:  # loaded before anything is created: a bad model leaves nothing
        from omniretrieve.embedder import Embedder

        embedders = {m: Embedder(m, dtype=dtype) for m in settings.embedders}
    return Collection.create(name, root=root, settings=settings, embedders=embedders), pool


def _ocr_reader(ocr: bool, engine: str) -> Any:
    from omniretrieve.ocr.engines import OcrUnavailableError
    from omniretrieve.ocr.reader import OcrReader

    if not ocr:
        return None
    try:
        return OcrReader(engine)
    except OcrUnavailableError as exc:
        typer.echo(f"note: {exc.message}", err=True)
        return None


def _sync(
    collection: Any,
    folder: Path,
    reader: Any,
    follow_symlinks: bool,
    max_chars: int,
    keep_missing: bool,
) -> dict[str, Any]:
    from omniretrieve.index.folder_sync import sync_folder

    report = sync_folder(
        collection,
        folder,
        reader=reader,
        follow_symlinks=follow_symlinks,
        max_chars=max_chars,
        keep_missing=keep_missing,
        show_progress=True,
    )
    return report.to_json()


def _file_documents(
    collection: Any, path: Path, reader: Any, max_chars: int
) -> tuple[list[Any], list[dict[str, Any]]]:
    """One image or PDF file's documents (ids: its name, with ``#page=N`` for pages)."""
    from omniretrieve.index.folder_sync import reads_images, skipped_json
    from omniretrieve.ingest.file_documents import ConvertedFiles, FileConverter

    converter = FileConverter(
        reader=reader,
        store=collection.files.put,
        reads_images=partial(reads_images, collection),
        max_chars=max_chars,
    )
    converted = ConvertedFiles()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc}", field="from") from exc
    converter.convert(path.name, data, converted)
    converter.finish()
    return converted.documents, skipped_json(converted.errors, converted.notes)


def _fusion(collection: Any) -> dict[str, Any]:
    """What searches fuse with (see ``collections show``), where the collection tunes itself."""
    tuning = collection.tuning() if collection.settings.fusion == "auto" else None
    if tuning is None:
        return {}
    return {
        "fusion": {
            "method": tuning.method,
            "weights": dict(zip(("bm25", *tuning.lists), tuning.weights, strict=True)),
            "rerank_first_stage_share": None
            if tuning.rerank is None
            else tuning.rerank.first_stage_share,
        }
    }


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    for item in payload["skipped"]:
        if "error" in item:
            typer.echo(f"error: {item['path']}: {item['error']}", err=True)
        else:
            typer.echo(f"skipped: {item['path']}: {item['reason']}", err=True)


def _watch(
    collection: Any, folder: Path, sync_options: tuple[Any, bool, int, bool], debounce_ms: int
) -> None:
    from omniretrieve.index.folder_watch import watch_folder

    def sync() -> None:
        payload = _sync(collection, folder, *sync_options)
        collection.flush()
        _say({"collection": collection.name, "documents": len(collection), **payload})

    def failed(exc: Exception) -> None:
        typer.echo(
            f"error: sync failed ({type(exc).__name__}: {exc}); retried at the next change",
            err=True,
        )

    typer.echo(f"watching {folder} (Ctrl-C to stop)", err=True)
    watch_folder(folder, sync, debounce_ms=debounce_ms, on_error=failed)
    typer.echo("stopped watching", err=True)


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
