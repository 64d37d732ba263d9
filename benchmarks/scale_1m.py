"""Scale benchmark: 1,000,000 clustered 384-d vectors and 1,000,000 short BM25 documents.

    python benchmarks/scale_1m.py [--size 1000000] [--queries 1000] [--ef-construction 64]

Measures, on the index classes collections use (``DenseIndex``, ``BM25Index`` and the z-score
fusion of ``Collection.search``): build time, resident memory added by each index, query latency
p50/p99 at top_k=10 for dense, sparse and hybrid (one query at a time, as a search request
arrives), and recall@10 of the approximate (HNSW) search against exact search.

Uniform random vectors have no neighbours, so the vectors are clustered: 20,000 unit centroids,
each vector a centroid plus Gaussian noise (mean cosine to its centroid ~0.7, about what MiniLM
gives between paraphrases), normalised. Queries are fresh draws from the same clusters. Embedding
a million real texts with MiniLM would take ~10 hours on this 2-core machine, so none are embedded.
The documents are 12-24 words drawn from a Zipf vocabulary of 50,000 terms, and a query is 3-5
words of one document.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from omniretrieve.fusion import top, zscore_fusion  # noqa: E402
from omniretrieve.index.dense import DenseConfig, DenseIndex  # noqa: E402
from omniretrieve.text.bm25 import Analyzer, BM25Index  # noqa: E402

DIMENSION = 384
TOP_K = 10
FIRST_STAGE = 100


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * 4096 / 2**20


def clustered_vectors(
    size: int, centroids: np.ndarray, rng: np.random.Generator, noise: float
) -> np.ndarray:
    out = np.empty((size, DIMENSION), dtype=np.float32)
    for start in range(0, size, 100_000):
        n = min(100_000, size - start)
        block = centroids[rng.integers(0, len(centroids), n)]
        block = block + noise * rng.standard_normal((n, DIMENSION), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + n] = block
    return out


def synthetic_documents(size: int, rng: np.random.Generator) -> list[str]:
    vocabulary = np.array([f"w{i}" for i in range(50_000)])
    ranks = np.arange(1, len(vocabulary) + 1)
    probabilities = 1.0 / ranks**1.07
    probabilities /= probabilities.sum()
    lengths = rng.integers(12, 25, size)
    words = rng.choice(len(vocabulary), size=int(lengths.sum()), p=probabilities)
    documents, position = [], 0
    for length in lengths:
        documents.append(" ".join(vocabulary[words[position : position + length]]))
        position += length
    return documents


def percentiles(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples) * 1000
    return {"p50_ms": float(np.percentile(values, 50)), "p99_ms": float(np.percentile(values, 99))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=20_000)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=64)
    parser.add_argument("--ef-search", type=int, default=128)
    parser.add_argument("--quantization", default="float", choices=["float", "int8", "binary"])
    parser.add_argument("--out", type=Path, default=None, help="write the numbers as JSON here")
    args = parser.parse_args()
    import faiss

    rng = np.random.default_rng(0)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results: dict[str, object] = {"size": args.size, "queries": args.queries, "args": settings}

    centroids = rng.standard_normal((args.clusters, DIMENSION), dtype=np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    vectors = clustered_vectors(args.size, centroids, rng, args.noise)
    queries = clustered_vectors(args.queries, centroids, rng, args.noise)
    print(f"generated {args.size:,} vectors", file=sys.stderr)

    # exact ground truth with a flat index (same inner product)
    exact = faiss.IndexFlatIP(DIMENSION)
    exact.add(vectors)
    _, truth = exact.search(queries, TOP_K)
    del exact
    gc.collect()

    before = rss_mib()
    start = time.perf_counter()
    config = DenseConfig(
        quantization=args.quantization,  # type: ignore[arg-type]
        hnsw_threshold=50_000,
        hnsw_m=args.hnsw_m,
        hnsw_ef_construction=args.ef_construction,
        hnsw_ef_search=args.ef_search,
    )
    dense = DenseIndex(vectors, config)
    build = time.perf_counter() - start
    # DenseIndex keeps the float matrix for rescoring; count it as part of the index
    dense_memory = rss_mib() - before + vectors.nbytes / 2**20
    print(f"dense {dense.kind} built in {build:.1f}s", file=sys.stderr)

    dense_times: list[float] = []
    found = np.zeros((args.queries, TOP_K), dtype=np.int64)
    for i, query in enumerate(queries):
        t = time.perf_counter()
        _, rows = dense.search(query[None, :], TOP_K)
        dense_times.append(time.perf_counter() - t)
        found[i] = rows[0]
    recall = float(
        np.mean([len(set(found[i]) & set(truth[i])) / TOP_K for i in range(args.queries)])
    )
    results["dense"] = {
        "index": dense.kind,
        "quantization": args.quantization,
        "build_s": build,
        "memory_mib": dense_memory,
        "recall_at_10_vs_exact": recall,
        **percentiles(dense_times),
    }

    documents = synthetic_documents(args.size, rng)
    print(f"generated {args.size:,} documents", file=sys.stderr)
    before = rss_mib()
    start = time.perf_counter()
    sparse = BM25Index(documents, analyzer=Analyzer(), show_progress=False)
    sparse_build = time.perf_counter() - start
    sparse_memory = rss_mib() - before
    query_texts = []
    for doc in rng.integers(0, args.size, args.queries):
        words = documents[doc].split()
        n = int(rng.integers(3, 6))
        begin = int(rng.integers(0, max(1, len(words) - n)))
        query_texts.append(" ".join(words[begin : begin + n]))
    del documents
    gc.collect()

    def sparse_top(text: str, k: int) -> dict[int, float]:
        scores = sparse.scores(text)
        best = np.argpartition(-scores, k - 1)[:k]
        return {int(i): float(scores[i]) for i in best if scores[i] > 0}

    sparse_times: list[float] = []
    for text in query_texts:
        t = time.perf_counter()
        top(sparse_top(text, TOP_K), TOP_K)
        sparse_times.append(time.perf_counter() - t)
    results["sparse"] = {
        "engine": "bm25s",
        "build_s": sparse_build,
        "memory_mib": sparse_memory,
        **percentiles(sparse_times),
    }

    hybrid_times: list[float] = []
    for query, text in zip(queries, query_texts, strict=True):
        t = time.perf_counter()
        lexical = sparse_top(text, FIRST_STAGE)
        scores, rows = dense.search(query[None, :], FIRST_STAGE)
        semantic = {int(r): float(s) for s, r in zip(scores[0], rows[0], strict=True) if r >= 0}
        top(zscore_fusion([lexical, semantic]), TOP_K)
        hybrid_times.append(time.perf_counter() - t)
    results["hybrid"] = {
        "fusion": "zscore",
        "first_stage": FIRST_STAGE,
        **percentiles(hybrid_times),
    }
    results["peak_rss_mib"] = rss_mib()

    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    print()
    print("| index | build | memory | p50 | p99 | recall@10 vs exact |")
    print("|---|---|---|---|---|---|")
    d, s, h = results["dense"], results["sparse"], results["hybrid"]  # type: ignore[index]
    print(
        f"| dense {d['index']} {d['quantization']} | {d['build_s']:.0f} s | "
        f"{d['memory_mib']:.0f} MiB | {d['p50_ms']:.2f} ms | {d['p99_ms']:.2f} ms | "
        f"{d['recall_at_10_vs_exact']:.3f} |"
    )
    print(
        f"| sparse bm25s | {s['build_s']:.0f} s | {s['memory_mib']:.0f} MiB | "
        f"{s['p50_ms']:.2f} ms | {s['p99_ms']:.2f} ms | - |"
    )
    print(f"| hybrid (z-score) | - | - | {h['p50_ms']:.2f} ms | {h['p99_ms']:.2f} ms | - |")


if __name__ == "__main__":
    main()
