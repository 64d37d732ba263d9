"""Collection endpoints: create, list, drop; upsert, get and delete documents; search."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from omniretrieve.errors import CollectionNotFoundError
from omniretrieve.index.collection import CollectionSettings
from omniretrieve.server.collections import CollectionManager
from omniretrieve.server.errors import ERROR_RESPONSES
from omniretrieve.server.routes import ready_pool
from omniretrieve.server.schemas import CreateCollectionRequest, SearchRequest, UpsertRequest

router = APIRouter(prefix="/v1/collections", tags=["collections"], responses=ERROR_RESPONSES)


def manager(request: Request) -> CollectionManager:
    ready_pool(request)
    return request.app.state.collections


async def locked(request: Request, name: str, work: Any) -> Any:
    """Run ``work(collection)`` in a thread under the collection's lock."""
    collections = manager(request)

    def run() -> Any:
        collection, lock = collections.get(name)
        with lock:
            return work(collection)

    return await asyncio.to_thread(run)


@router.get("")
async def list_collections(request: Request) -> dict[str, Any]:
    return {"collections": manager(request).names()}


@router.post("", status_code=201)
async def create_collection(body: CreateCollectionRequest, request: Request) -> dict[str, Any]:
    collections = manager(request)
    embedders = tuple(body.embedders or [next(iter(collections.pool.embedders))])
    settings = CollectionSettings(
        embedders=embedders,
        quantization=body.quantization,
        language=body.language,
        fusion=body.fusion,
        vector_store=body.vector_store,
        milvus_uri=request.app.state.milvus_uri if body.vector_store == "milvus" else None,
    ).validate()
    collection = await asyncio.to_thread(collections.create, body.name, settings)
    return {"name": collection.name, "settings": collection.settings.__dict__}


@router.delete("/{name}")
async def drop_collection(name: str, request: Request) -> dict[str, Any]:
    await asyncio.to_thread(manager(request).drop, name)
    return {"dropped": name}


@router.put("/{name}/documents")
async def upsert_documents(name: str, body: UpsertRequest, request: Request) -> dict[str, Any]:
    report = await locked(request, name, lambda c: c.upsert(body.documents))
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
async def search_collection(name: str, body: SearchRequest, request: Request) -> dict[str, Any]:
    hits = await locked(
        request,
        name,
        lambda c: c.search(
            body.query, top_k=body.top_k, mode=body.mode, rerank=body.rerank, filter=body.filter
        ),
    )
    return {"collection": name, "query": body.query, "hits": [h.to_json() for h in hits]}
