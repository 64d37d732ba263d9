"""Collection endpoints: create, list, drop; upsert, get and delete documents; search."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from omniretrieve.errors import CollectionNotFoundError, LimitExceededError, ModelNotFoundError
from omniretrieve.index.collection import CollectionSettings
from omniretrieve.index.queries import parse_query
from omniretrieve.index.settings import settings_json
from omniretrieve.server import examples
from omniretrieve.server.collections import CollectionManager
from omniretrieve.server.errors import ERROR_RESPONSES
from omniretrieve.server.images import validate_images, validate_text_lengths
from omniretrieve.server.routes import app_config, ready_pool, result_unless_disconnected
from omniretrieve.server.schemas import CreateCollectionRequest, SearchRequest, UpsertRequest

router = APIRouter(prefix="/v1/collections", tags=["collections"], responses=ERROR_RESPONSES)


def manager(request: Request) -> CollectionManager:
    ready_pool(request)
    return request.app.state.collections


async def in_collection_threads(request: Request, function: Any, *args: Any) -> Any:
    """``function(*args)`` in the collection manager's own threads, off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(manager(request).executor, function, *args)


async def locked(request: Request, name: str, work: Any) -> Any:
    """Run ``work(collection)`` in the collections' own threads under its lock."""
    return await in_collection_threads(request, manager(request).run, name, work)


def loaded_reranker(request: Request, requested: bool | str, collection: Any) -> str | None:
    """The loaded reranker a search may use: ``true`` means the collection's own. Over HTTP
    a reranker is always one the server loaded, never a path or a hub id (no file is read
    and nothing is downloaded for a client)."""
    if requested is False:
        return None
    name = collection.settings.reranker if requested is True else requested
    try:
        return manager(request).pool.reranker(name).model.model_id
    except ModelNotFoundError as exc:  # the pool's own lookup; the field here is rerank
        raise ModelNotFoundError(exc.message, field="rerank") from exc


@router.get("")
async def list_collections(request: Request) -> dict[str, Any]:
    return {"collections": manager(request).names()}


@router.post("", status_code=201)
async def create_collection(
    body: Annotated[CreateCollectionRequest, Body(openapi_examples=examples.CREATE_COLLECTION)],
    request: Request,
) -> dict[str, Any]:
    collections = manager(request)
    embedders = tuple(dict.fromkeys(body.embedders or [next(iter(collections.pool.embedders))]))
    settings = CollectionSettings(
        embedders=embedders,
        quantization=body.quantization,
        language=body.language,
        fusion=body.fusion,
        vector_store=body.vector_store,
        sparse=body.sparse,
        storage=body.storage,
        milvus_uri=request.app.state.milvus_uri if body.vector_store == "milvus" else None,
        ocr_images=body.ocr_images,
    ).validate()
    collection = await in_collection_threads(request, collections.create, body.name, settings)
    return {"name": collection.name, "settings": collection.settings.__dict__}


@router.get("/{name}")
async def show_collection(name: str, request: Request) -> dict[str, Any]:
    """Settings, size and the self-tuned fusion (with every candidate's pseudo-query score)."""

    def show(collection: Any) -> dict[str, Any]:
        tuning = collection.tuning()
        return {
            "name": name,
            "documents": len(collection),
            "settings": settings_json(collection.settings),
            "tuning": None if tuning is None else tuning.to_json(),
            "query_image": collection.query_image_readers(),
        }

    return await locked(request, name, show)


@router.post("/{name}/tune")
async def tune_collection(name: str, request: Request) -> dict[str, Any]:
    """Fit the collection's fusion and reranker mix on pseudo-queries now (upserts do it on
    their own as the collection grows)."""
    collections = manager(request)
    entry = await in_collection_threads(request, collections.get, name)
    job = collections.tuning.tune(entry)
    try:  # the fit runs in the tuning queue's thread; the last client to leave cancels it
        fitted = await result_unless_disconnected(request, job.future)
    finally:
        collections.tuning.leave(job)
    return {"name": name, "tuning": fitted.to_json()}


@router.delete("/{name}")
async def drop_collection(name: str, request: Request) -> dict[str, Any]:
    await in_collection_threads(request, manager(request).drop, name)
    return {"dropped": name}


@router.put("/{name}/documents")
async def upsert_documents(
    name: str,
    body: Annotated[UpsertRequest, Body(openapi_examples=examples.UPSERT)],
    request: Request,
) -> dict[str, Any]:
    limit = app_config(request).limits.max_upsert_documents
    if len(body.documents) > limit:
        raise LimitExceededError(
            f"documents has {len(body.documents)} items; the limit per request is {limit}",
            field="documents",
        )
    report = await in_collection_threads(request, manager(request).upsert, name, body.documents)
    return {"collection": name, **report.__dict__}


@router.get("/{name}/documents/{doc_id:path}")
async def get_document(name: str, doc_id: str, request: Request) -> JSONResponse:
    document = await locked(request, name, lambda c: c.get(doc_id))
    if document is None:
        raise CollectionNotFoundError(
            f"document {doc_id!r} is not in collection {name!r}", field="id"
        )
    return JSONResponse(document.to_json())


@router.delete("/{name}/documents/{doc_id:path}")
async def delete_document(name: str, doc_id: str, request: Request) -> dict[str, Any]:
    deleted = await locked(request, name, lambda c: c.delete([doc_id]))
    if not deleted:
        raise CollectionNotFoundError(
            f"document {doc_id!r} is not in collection {name!r}", field="id"
        )
    return {"deleted": doc_id}


@router.post("/{name}/search")
async def search_collection(
    name: str,
    body: Annotated[SearchRequest, Body(openapi_examples=examples.SEARCH)],
    request: Request,
) -> dict[str, Any]:
    """Search with a text, an image, or both (a composed query)."""
    raw = body.query if isinstance(body.query, str) else body.query.model_dump(exclude_none=True)
    query = parse_query(raw, "query")
    limits = app_config(request).limits
    validate_text_lengths([("query", query.as_input())], limits=limits)
    validate_images(  # inline within the limits, URLs public: never a file, never a bomb
        [("query", query.as_input())],
        limits=limits,
        model_id="",
        modalities=frozenset({"text", "image"}),
        policy=app_config(request).fetch_policy(),
    )
    if query.image is not None:
        (fetched,) = await request.app.state.image_fetcher.prefetch([("query", query.as_input())])
        query = parse_query(fetched, "query")

    def search(collection: Any) -> Any:
        reranker = loaded_reranker(request, body.rerank, collection)
        return collection.search_report(
            query,
            top_k=body.top_k,
            mode=body.mode,
            rerank=reranker or False,
            filter=body.filter,
            max_chars=body.max_chars,
            diversity=body.diversity,
            collapse_duplicates=body.collapse_duplicates,
            outputs=body.outputs,
        )

    report = await locked(request, name, search)
    return {
        "collection": name,
        "query": query.describe(),
        **report.read.to_json(),
        "took_ms": round(report.seconds * 1000, 1),
        "hits": [h.to_json() for h in report.hits],
    }
