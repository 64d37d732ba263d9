"""SciFact through a Collection: BM25, dense, hybrid and hybrid + rerank, as users get them.

The collection is kept under .cache/ between runs (keyed by the embedder's fingerprint); a
re-run upserts the same documents, which the content hashes turn into a no-op."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniretrieve.eval.datasets import load_beir
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.index.collection import Collection
from omniretrieve.index.documents import iter_jsonl_documents
from tests.conftest import CACHE_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scifact_collection(datasets_dir: Path, minilm, hybrid_reranker):
    root = CACHE_DIR / "collections"
    name = f"scifact-{minilm.fingerprint}"
    models = {
        "embedders": {"all-MiniLM-L6-v2": minilm},
        "rerankers": {"omniretrieve-hybrid-reranker": hybrid_reranker},
    }
    if name in Collection.list(root):
        collection = Collection.open(name, root=root, **models)
    else:
        collection = Collection.create(name, root=root, **models)
    collection.upsert(
        iter_jsonl_documents(datasets_dir / "scifact" / "corpus.jsonl"), show_progress=True
    )
    collection.flush()
    yield collection
    collection.close()


def run_of(
    collection: Collection, queries: dict[str, str], **kwargs
) -> dict[str, dict[str, float]]:
    return {
        qid: {hit.doc_id: hit.score for hit in collection.search(text, top_k=10, **kwargs)}
        for qid, text in queries.items()
    }


def test_scifact_table(scifact_collection: Collection, datasets_dir: Path) -> None:
    data = load_beir(datasets_dir / "scifact", "test")
    queries = data.judged_queries()
    ndcg = {
        name: evaluate_run(data.qrels, run_of(scifact_collection, queries, **kwargs)).mean[
            "ndcg@10"
        ]
        for name, kwargs in (
            ("bm25", {"mode": "sparse"}),
            ("dense", {"mode": "dense"}),
            ("hybrid", {"mode": "hybrid"}),
            ("hybrid+rerank", {"mode": "hybrid", "rerank": True}),
        )
    }
    print(ndcg)
    assert ndcg["bm25"] >= 0.655, ndcg  # BEIR reports 0.665
    assert ndcg["hybrid"] >= 0.72, ndcg
    assert ndcg["hybrid"] > max(ndcg["bm25"], ndcg["dense"]), ndcg
    assert ndcg["hybrid+rerank"] >= ndcg["hybrid"] - 0.005, ndcg
