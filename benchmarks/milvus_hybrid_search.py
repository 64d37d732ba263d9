"""Which first stage a Milvus-native collection should run: Milvus's own ``hybrid_search``
(RRF or weighted rankers, fused inside Milvus) or our z-score fusion of Milvus's two lists
(BM25 and dense, each from its own Milvus search), on SciFact's test queries.

    python benchmarks/milvus_hybrid_search.py [--queries 300] [--out milvus_hybrid.json]

A ``vector_store="milvus", sparse="milvus"`` collection of SciFact (bundled MiniLM, this
machine's default precision) is built once into ``.cache/bench/`` and reused. Its searches give
the z-score row (what the collection does) and, from the same two Milvus lists, RRF (k=60)
fused by us. ``hybrid_search`` needs both vectors in one Milvus row, so a second Milvus
collection holds a row per passage (the collection's stored passage vectors, and the passage's
text analysed as the collection analyses it for BM25); it is searched with ``RRFRanker(60)``
and ``WeightedRanker(0.5, 0.5)`` and a document ranks at its best passage. Its z-score row
(our fusion of the same passage-level lists) separates the effect of the fusion from the
effect of passage-level BM25. Prints NDCG@10, Recall@100 and per-query latency per row.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _scifact import ROOT, SciFactSplit

from omniretrieve import Embedder
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.fusion import zscore_fusion
from omniretrieve.index.collection import Collection, CollectionSettings
from omniretrieve.index.milvus_sparse import analysed_text
from omniretrieve.text.analyzers import Analyzer
from omniretrieve.text.bm25 import DEFAULT_B, DEFAULT_K1

DEPTH = 100
NAME = "scifact"
FOLDER = ROOT / ".cache" / "bench" / "milvus-hybrid"

Run = dict[str, dict[str, float]]


def scifact_collection(data: SciFactSplit) -> Collection:
    embedder = Embedder()
    if (FOLDER / NAME).is_dir():
        return Collection.open(NAME, root=FOLDER, embedders={embedder.model_id: embedder})
    settings = CollectionSettings(
        vector_store="milvus", sparse="milvus", fusion="zscore", language="en"
    )  # type: ignore[arg-type]
    collection = Collection.create(
        NAME, root=FOLDER, settings=settings, embedders={embedder.model_id: embedder}
    )
    documents = [{"id": d.doc_id, "text": d.full_text} for d in data.corpus.values() if not d.empty]
    collection.options.auto_tune = False
    collection.upsert(documents, show_progress=True)
    collection.flush()
    return collection


def passage_rows(collection: Collection) -> tuple[str, int, list[dict[str, Any]]]:
    """A row per passage: its vector and its analysed text, for Milvus's hybrid_search."""
    state = collection.state()
    (field,) = state.passages
    analyzer = Analyzer(collection.settings.language)
    rows: list[dict[str, Any]] = []
    for doc_id, (spans, vectors) in state.passages[field].items():
        text = state.documents[doc_id].text
        pieces = [text[start:end] for start, end in spans]
        for number, (tokens, vector) in enumerate(
            zip(analyzer.tokenize(pieces), vectors, strict=True)
        ):
            rows.append(
                {
                    "pid": f"{doc_id}#{number}",
                    "doc_id": doc_id,
                    "text": analysed_text(tokens) or "x",
                    "vector": np.asarray(vector, dtype=np.float32),
                }
            )
    return field, int(rows[0]["vector"].shape[0]), rows


def passage_collection(client: Any, dimension: int, rows: list[dict[str, Any]]) -> str:
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("pid", DataType.VARCHAR, is_primary=True, max_length=256)
    schema.add_field("doc_id", DataType.VARCHAR, max_length=256)
    schema.add_field(
        "text",
        DataType.VARCHAR,
        max_length=65_535,
        enable_analyzer=True,
        analyzer_params={"tokenizer": "standard"},
    )
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=["text"],
            output_field_names=["sparse"],
        )
    )
    index = client.prepare_index_params()
    index.add_index(
        field_name="sparse",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": DEFAULT_K1, "bm25_b": DEFAULT_B},
    )
    index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
    client.create_collection("passages", schema=schema, index_params=index)
    for start in range(0, len(rows), 2000):
        client.insert("passages", rows[start : start + 2000])
    client.flush("passages")  # sealed, as the collection's own rows are once reopened
    client.load_collection("passages")
    return "passages"


def best_passage(hits: list[dict[str, Any]], depth: int) -> dict[str, float]:
    """Documents at their best passage, best first, ``depth`` of them."""
    ranked: dict[str, float] = {}
    for hit in hits:
        doc_id = hit["entity"]["doc_id"]
        if doc_id not in ranked:
            ranked[doc_id] = abs(float(hit["distance"]))  # Lite: BM25 as a negative distance
    return dict(list(ranked.items())[:depth])


def score(run: Run, qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    measured = evaluate_run({q: qrels[q] for q in run}, run, ("ndcg@10", "recall@100")).mean
    return {name: round(value, 4) for name, value in measured.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from pymilvus import AnnSearchRequest, MilvusClient, RRFRanker, WeightedRanker

    data = SciFactSplit.read("test")
    queries = list(data.judged_queries().items())[: args.queries]
    collection = scifact_collection(data)
    runs: dict[str, Run] = {}
    latency: dict[str, list[float]] = {}

    def timed(row: str, qid: str, search: Any) -> None:
        started = time.perf_counter()
        runs.setdefault(row, {})[qid] = search()
        latency.setdefault(row, []).append(time.perf_counter() - started)

    with collection:
        embedder = collection.embedder(collection.settings.embedders[0])
        for qid, text in queries:
            timed("document lists, z-score (the collection)",  qid,
                  lambda t=text: {h.doc_id: h.score for h in
                                  collection.search(t, mode="hybrid", top_k=DEPTH)})  # fmt: skip
        fields, stages = collection.first_stage_runs([t for _, t in queries], depth=DEPTH)
        for (qid, _), stage in zip(queries, stages, strict=True):
            fused = collection.fuse_runs(stage, fields, fusion_method="rrf")
            runs.setdefault("document lists, RRF k=60 (ours)", {})[qid] = fused
        field, dimension, rows = passage_rows(collection)
        query_vectors = embedder.encode_texts([t for _, t in queries], task="retrieval.query")
    analyzer = Analyzer("en")
    with tempfile.TemporaryDirectory() as folder:
        client = MilvusClient(uri=str(Path(folder) / "passages.db"))
        name = passage_collection(client, dimension, rows)
        limit = 4 * DEPTH  # passages, for DEPTH documents after the best-passage cut

        def requests(text: str, vector: np.ndarray) -> list[Any]:
            analysed = analysed_text(analyzer.tokenize([text])[0])
            return [
                AnnSearchRequest([vector.tolist()], "vector", {"metric_type": "IP"}, limit),
                AnnSearchRequest([analysed], "sparse", {"metric_type": "BM25"}, limit),
            ]

        for (qid, text), vector in zip(queries, query_vectors, strict=True):
            for row, ranker in (
                ("passage rows, Milvus hybrid_search RRFRanker(60)", RRFRanker(60)),
                ("passage rows, Milvus hybrid_search WeightedRanker(0.5, 0.5)",
                 WeightedRanker(0.5, 0.5)),
            ):  # fmt: skip
                timed(row, qid, lambda r=ranker, t=text, v=vector: best_passage(
                    client.hybrid_search(name, requests(t, v), ranker=r, limit=limit,
                                         output_fields=["doc_id"])[0], DEPTH))  # fmt: skip

            def ours(t: str = text, v: np.ndarray = vector) -> dict[str, float]:
                lists = [
                    best_passage(client.search(name, data=[request.data[0]],
                                               anns_field=request.anns_field,
                                               search_params=request.param, limit=limit,
                                               output_fields=["doc_id"])[0], DEPTH)
                    for request in requests(t, v)
                ]  # fmt: skip
                return zscore_fusion(lists)

            timed("passage rows, two Milvus searches, z-score (ours)", qid, ours)
        client.close()
    table = []
    for row, run in runs.items():
        seconds = latency.get(row)
        table.append(
            {
                "first stage": row,
                **score(run, data.qrels),
                "p50 ms": round(float(np.percentile(seconds, 50)) * 1000, 1) if seconds else None,
            }
        )
    result = {"queries": len(queries), "passages": len(rows), "field": field, "rows": table}
    print(json.dumps(result, indent=2))
    for line in table:
        print(f"{line['first stage']:<62} NDCG@10 {line['ndcg@10']:.4f}  "
              f"R@100 {line['recall@100']:.4f}  p50 {line['p50 ms']} ms")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
