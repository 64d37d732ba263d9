"""Late interaction at scale: documents of per-token vectors (random, clustered, unit length),
searched in process with :class:`omniretrieve.index.late_interaction.LateInteractionIndex`
(candidates by centroid interaction, exact MaxSim rescoring), and in Milvus Lite as a
collection's multi-vector field is there (``--milvus``): one row per token vector, each query
vector's nearest :data:`~omniretrieve.index.vectors.CANDIDATE_TOKENS` rows naming the
candidate documents, rescored exactly by MaxSim from the float32 copy (Milvus Lite has no
embedding lists: it refuses an index on an array-of-struct vector field).

    python benchmarks/late_interaction_scale.py [--documents 100000] [--tokens 64]
        [--dimension 128] [--queries 50] [--query-tokens 32] [--codes float32,float16,int8]
        [--milvus]

Prints, per rescoring code: build time, memory per document (everything the index holds),
p50/p99 search latency (top 10), and recall@10 against exact MaxSim over every document
(computed here in blocks, the reference). Queries are drawn like documents (tokens from the same
clusters), so their neighbours are not trivially their own copies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from omniretrieve.index.late_interaction import (  # noqa: E402
    LateInteractionConfig,
    LateInteractionIndex,
)

CLUSTERS = 4096
NOISE = 0.35


def clustered(count: int, tokens: int, centroids: np.ndarray, rng: np.random.Generator):
    """``count`` documents of ``tokens`` unit vectors; each document draws its tokens from a
    few topics (clusters), as a passage's tokens share a few senses."""
    documents = []
    for _ in range(count):
        topics = rng.integers(0, len(centroids), 8)
        block = centroids[topics[rng.integers(0, 8, tokens)]]
        block = block + NOISE * rng.standard_normal(block.shape, dtype=np.float32)
        documents.append((block / np.linalg.norm(block, axis=1, keepdims=True)).astype(np.float32))
    return documents


def exact_top(index: LateInteractionIndex, query: np.ndarray, k: int) -> set[int]:
    best: list[tuple[float, int]] = []
    for start in range(0, index.size, 5000):
        rows = np.arange(start, min(index.size, start + 5000))
        scores = index.exact(query, rows)
        best += list(zip(scores.tolist(), rows.tolist(), strict=True))
        best = sorted(best, key=lambda item: (-item[0], item[1]))[:k]
    return {row for _, row in best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--dimension", type=int, default=128)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--query-tokens", type=int, default=32)
    parser.add_argument("--codes", default="float32,float16,int8")
    parser.add_argument("--rescore", type=int, default=256)
    parser.add_argument("--nprobe", type=int, default=8)
    parser.add_argument("--milvus", action="store_true", help="also Milvus Lite")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centroids = rng.standard_normal((CLUSTERS, args.dimension)).astype(np.float32)
    started = time.perf_counter()
    documents = clustered(args.documents, args.tokens, centroids, rng)
    queries = clustered(args.queries, args.query_tokens, centroids, rng)
    print(f"made {args.documents} x {args.tokens} vectors in {time.perf_counter() - started:.0f} s")
    reference: list[set[int]] | None = None
    rows = []
    for codes in [c for c in args.codes.split(",") if c]:  # --codes "": Milvus Lite alone
        config = LateInteractionConfig(codes=codes, rescore=args.rescore, nprobe=args.nprobe)  # type: ignore[arg-type]
        started = time.perf_counter()
        index = LateInteractionIndex(documents, config)
        build = time.perf_counter() - started
        if reference is None:  # exact MaxSim over every document, from float32 vectors
            exact_index = (
                index
                if codes == "float32"
                else LateInteractionIndex(documents, LateInteractionConfig(exact_threshold=10**12))
            )
            started = time.perf_counter()
            reference = [exact_top(exact_index, q, 10) for q in queries]
            exhaustive = (time.perf_counter() - started) / len(queries)
            print(f"exhaustive exact MaxSim: {1000 * exhaustive:.0f} ms a query")
        latencies, recalls = [], []
        for query, expected in zip(queries, reference, strict=True):
            started = time.perf_counter()
            found = index.search(query, 10)
            latencies.append(time.perf_counter() - started)
            recalls.append(len({row for row, _ in found} & expected) / 10)
        latencies.sort()
        rows.append(
            {
                "codes": codes,
                "index": index.kind,
                "build_s": round(build, 1),
                "bytes_per_document": round(index.memory_bytes / index.size),
                "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
                "p99_ms": round(
                    1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1
                ),
                "recall_at_10": round(float(np.mean(recalls)), 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        del index
    if args.milvus:
        exact_index = LateInteractionIndex(documents, LateInteractionConfig(exact_threshold=10**12))
        if reference is None:
            started = time.perf_counter()
            reference = [exact_top(exact_index, q, 10) for q in queries]
            exhaustive = (time.perf_counter() - started) / len(queries)
            print(f"exhaustive exact MaxSim: {1000 * exhaustive:.0f} ms a query")
        rows.append(milvus_lite(documents, queries, reference, exact_index))
        print(json.dumps(rows[-1]), flush=True)
    print(
        json.dumps(
            {
                "documents": args.documents,
                "tokens": args.tokens,
                "dimension": args.dimension,
                "queries": args.queries,
                "query_tokens": args.query_tokens,
                "rows": rows,
            }
        )  # fmt: skip
    )


def wait_for_index(folder: Path) -> None:
    """Wait until Milvus Lite has compacted and indexed the sealed rows: it does so in a
    background worker after a flush, and searches before that scan unindexed segments.
    (Lite's own drain point, through its private engine objects: a benchmark's measure of
    the steady state, not product code.)"""
    from milvus_lite.server_manager import server_manager_instance

    for path, (_, db, _) in list(server_manager_instance._servers.items()):
        if path.startswith(str(folder)):
            for collection in list(db._collections.values()):
                collection._wait_for_bg()


def milvus_lite(
    documents: list[np.ndarray],
    queries: list[np.ndarray],
    reference: list[set[int]],
    exact_index: LateInteractionIndex,
) -> dict[str, object]:
    """The documents' token vectors as Milvus Lite rows (the collection's row format), then
    each query as a collection's multi-vector search runs it on Milvus."""
    import shutil
    import tempfile

    from omniretrieve.index.milvus_store import MilvusVectors
    from omniretrieve.index.vectors import CANDIDATE_TOKENS

    folder = Path(tempfile.mkdtemp(prefix="milvus-late-"))
    milvus = MilvusVectors(str(folder / "milvus.db"), "bench")
    field = "multivector-bench"
    started = time.perf_counter()
    for start in range(0, len(documents), 1000):
        batch = range(start, min(len(documents), start + 1000))
        milvus.upsert(
            field,
            documents[0].shape[1],
            ((str(i), "v", {}, documents[i]) for i in batch),
            new={str(i) for i in batch},
        )
    milvus.seal()
    inserted = time.perf_counter() - started
    wait_for_index(folder)  # Lite indexes sealed rows in the background
    build = time.perf_counter() - started
    on_disk = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    latencies, recalls = [], []
    for query, expected in zip(queries, reference, strict=True):
        started = time.perf_counter()
        found = milvus.search(field, query, CANDIDATE_TOKENS)
        candidates = np.array(sorted({int(d) for hits in found for d, _ in hits}))
        scores = exact_index.exact(query, candidates)
        best = candidates[np.lexsort((candidates, -scores))[:10]]
        latencies.append(time.perf_counter() - started)
        recalls.append(len(set(best.tolist()) & expected) / 10)
    milvus.close()
    shutil.rmtree(folder, ignore_errors=True)
    latencies.sort()
    return {
        "codes": "milvus-lite rows + float32 rescoring",
        "index": f"Milvus Lite AUTOINDEX, {CANDIDATE_TOKENS} rows per query vector",
        "build_s": round(build, 1),
        "insert_s": round(inserted, 1),
        "bytes_per_document": round(on_disk / len(documents)),
        "rescoring_bytes_per_document": round(exact_index.memory_bytes / exact_index.size),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
        "recall_at_10": round(float(np.mean(recalls)), 3),
    }


if __name__ == "__main__":
    main()
