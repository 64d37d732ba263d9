"""A collection's documents over HTTP: a page of them (or all, as JSON lines), their pictures
(thumbnails and full size), the metadata values search can filter on, and files uploaded as
they are (PDF, images, text in any encoding, HTML), ingested exactly as ``omniretrieve index``
ingests a folder's files."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from fastapi import APIRouter, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse

from omniretrieve.errors import CollectionNotFoundError, InputError, LimitExceededError
from omniretrieve.index.facets import metadata_facets
from omniretrieve.index.folder_sync import reads_images, skipped_json
from omniretrieve.ingest.file_documents import ConvertedFiles, FileConverter
from omniretrieve.server.errors import ERROR_RESPONSES
from omniretrieve.server.routes import app_config
from omniretrieve.server.routes.collections import in_collection_threads, locked, manager
from omniretrieve.server.thumbnails import PictureCache, check_width, content_key, draw

router = APIRouter(prefix="/v1/collections", tags=["collections"], responses=ERROR_RESPONSES)
MAX_EXPORT_CHUNK = 256


@router.get("/{name}/documents")
async def list_documents(
    name: str,
    request: Request,
    offset: int = Query(0, ge=0, description="Documents to skip, in id order."),
    limit: int = Query(100, ge=1, le=1000, description="Documents in this page."),
    format: str = Query(
        "json",
        pattern="^(json|jsonl)$",
        description="json: one page; jsonl: "
        "every document from offset, one JSON line each (an export).",
    ),  # noqa: A002
) -> Response:
    """A page of documents in id order (``total`` counts them all), or with ``format=jsonl``
    every document from ``offset`` as JSON lines, which ``PUT .../documents`` and
    ``omniretrieve index --from`` read back."""
    if format == "jsonl":
        ids: list[str] = await locked(request, name, lambda c: sorted(c.document_ids()))
        return StreamingResponse(
            _export(request, name, ids[offset:]), media_type="application/x-ndjson"
        )
    page = await locked(request, name, lambda c: c.list_documents(offset, limit))
    return JSONResponse(
        {
            "collection": name,
            "total": page.total,
            "offset": page.offset,
            "limit": limit,
            "documents": [d.to_json() for d in page.documents],
        }
    )


async def _export(request: Request, name: str, ids: list[str]) -> Any:
    for start in range(0, len(ids), MAX_EXPORT_CHUNK):
        chunk = ids[start : start + MAX_EXPORT_CHUNK]

        def read(collection: Any, chunk: list[str] = chunk) -> list[Any]:
            return [d for d in (collection.get(i) for i in chunk) if d is not None]

        documents = await locked(request, name, read)
        yield "".join(json.dumps(d.to_json(), ensure_ascii=False) + "\n" for d in documents)


@router.get(
    "/{name}/images/{doc_id:path}",
    responses={200: {"content": {"image/png": {}}, "description": "The picture (PNG)."}},
)
async def document_image(
    name: str,
    doc_id: str,
    request: Request,
    width: int | None = Query(None, description="Thumbnail width in pixels (16-1024, 320)."),
    full: bool = Query(False, description="The whole image (a PDF page at 144 dpi)."),
) -> Response:
    """A document's picture (an image document, a PDF page) as PNG: a thumbnail at most
    ``width`` pixels wide, or the whole image. Drawn only from what the collection stores."""
    chosen = check_width(width, full)
    limits = app_config(request).limits
    pictures: PictureCache = request.app.state.pictures  # keyed by content: shared safely

    def picture(collection: Any) -> Any:
        document = collection.get(doc_id)
        if document is None:
            raise CollectionNotFoundError(
                f"document {doc_id!r} is not in collection {name!r}", field="id"
            )
        key = (content_key(document), chosen or 0)
        cached = pictures.get(key)
        if cached is not None:
            return cached
        drawn = draw(
            document,
            collection.files,
            width=chosen,
            max_image_bytes=limits.max_image_bytes,
            max_pixels=limits.max_image_pixels,
        )
        pictures.put(key, drawn)
        return drawn

    found = await locked(request, name, picture)
    headers = {"ETag": f'"{found.etag}"', "Cache-Control": "private, max-age=86400"}
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return Response(found.data, media_type=found.media_type, headers=headers)


@router.get("/{name}/facets")
async def facets(name: str, request: Request) -> dict[str, Any]:
    """Metadata fields with few distinct values (``suffix``, ``lang``, ``text_source``...),
    each value with its document count: what search can filter on."""
    found = await locked(request, name, lambda c: metadata_facets(c.iter_documents()))
    return {"collection": name, "facets": found}


@router.post("/{name}/files")
async def upload_files(name: str, files: list[UploadFile], request: Request) -> dict[str, Any]:
    """Files as they are (multipart ``files``): PDFs become one document per page, images
    are read by OCR (and embedded as images where an embedder reads them), text in any
    encoding, HTML as its text; each file's name (a relative path) is its id. The same ingest
    as ``omniretrieve index --from DIR``; files that cannot be read, or have nothing to
    index, are listed in ``skipped`` and the rest are indexed."""
    limits = app_config(request).limits
    if len(files) > limits.max_upsert_documents:
        raise LimitExceededError(
            f"files has {len(files)} items; the limit per request is {limits.max_upsert_documents}",
            field="files",
        )
    uploads = []
    for position, upload in enumerate(files):
        uploads.append((_file_name(upload.filename, position), await upload.read()))
    names = [n for n, _ in uploads]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise InputError(f"files: {twice!r} is sent twice", field="files")
    collections = manager(request)
    reader = request.app.state.ocr_reader

    def convert() -> ConvertedFiles:
        collection = collections.get(name).collection
        converter = FileConverter(
            reader=reader,
            store=collection.files.put,
            reads_images=partial(reads_images, collection),
            max_chars=limits.max_text_chars,
        )
        return converter.convert_many(uploads)

    converted = await in_collection_threads(request, convert)
    report = await in_collection_threads(request, collections.upsert, name, converted.documents)
    return {
        "collection": name,
        **report.__dict__,
        "documents": [d["id"] for d in converted.documents],
        "skipped": skipped_json(converted.errors, converted.notes),
    }


def _file_name(filename: str | None, position: int) -> str:
    """An uploaded file's id: the relative path the client sent (``docs/guide.md``, as
    ``omniretrieve index --server`` sends a folder's files), without a leading ``/`` or
    ``./``; a path that climbs out (``..``) is refused."""
    parts = [p for p in (filename or "").replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InputError(
            f"files[{position}] has a file name that climbs out of its folder: {filename!r}",
            field=f"files[{position}]",
        )
    if not parts:
        raise InputError(f"files[{position}] has no file name", field=f"files[{position}]")
    return "/".join(parts)
