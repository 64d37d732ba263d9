"""The 1M scale benchmark in Milvus-native mode (Milvus Lite): the same clustered 384-d vectors
and short Zipf documents as ``scale_1m.py``, written through the code a ``vector_store="milvus",
sparse="milvus"`` collection uses (``MilvusVectors`` for the passage vectors, our analysis and
``analysed_text`` for the BM25 rows, Milvus's BM25 function and sparse index), then searched.

    python benchmarks/scale_1m_milvus.py [--size 1000000] [--queries 1000] [--batch 100]

Milvus Lite 3 runs inside the process that opens its file, so here it runs as its own server
(``milvus-lite server`` on 127.0.0.1, reached by URI as a cluster would be): the resident
memory of this process (it holds no index: the rows are streamed in blocks) and of the server
are measured apart as the corpus grows. Also reported: build time (vectors and BM25 rows),
query latency p50/p99 one query at a time for dense, sparse and hybrid (z-score fusion of
Milvus's two top-100 lists, as a collection fuses them), and the throughput of batched queries
(``--batch`` queries per Milvus call), where Lite's per-call cost is paid once.

Each block is flushed after it is written, as a collection on Lite flushes its vector rows
(unflushed rows are searched ~7x slower); ``--flush-bm25`` flushes the BM25 rows too, which a
collection does not (Lite keeps BM25 statistics per segment; these blocks are drawn alike, so
their statistics barely differ): without it BM25 searches scan every row unindexed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scale_1m import (  # noqa: E402
    DIMENSION,
    FIRST_STAGE,
    TOP_K,
    clustered_vectors,
    percentiles,
    rss_mib,
    synthetic_documents,
)

from omniretrieve.fusion import top, zscore_fusion  # noqa: E402
from omniretrieve.index.milvus_sparse import analysed_text  # noqa: E402
from omniretrieve.index.milvus_store import MilvusVectors  # noqa: E402
from omniretrieve.text.analyzers import Analyzer  # noqa: E402
from omniretrieve.text.bm25 import DEFAULT_B, DEFAULT_K1  # noqa: E402

BLOCK = 20_000
FIELD = "dense-bench"


def start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A Milvus Lite server on a free local port, and its URI."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(Path(sys.executable).parent / "milvus-lite"), "server", "--data-dir",
               str(folder), "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server, f"http://127.0.0.1:{port}"
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("the Milvus Lite server did not start")


def process_rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument(
        "--flush-bm25",
        action="store_true",
        help="flush the BM25 rows too (a collection does not on Lite: Lite's BM25 statistics "
        "are per segment; the blocks here are alike, so scores barely move)",
    )
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clusters", type=int, default=20_000)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    folder = Path(tempfile.mkdtemp(prefix="milvus-1m-"))
    server, uri = start_server(folder)
    milvus = MilvusVectors(uri, "bench")
    analyzer = Analyzer("en")
    centroids = rng.standard_normal((args.clusters, DIMENSION), dtype=np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    queries = clustered_vectors(args.queries, centroids, rng, args.noise)
    results: dict[str, object] = {"size": args.size, "queries": args.queries, "memory": []}
    memory: list[dict[str, float]] = results["memory"]  # type: ignore[assignment]
    query_texts: list[str] = []
    dense_s = sparse_s = seal_s = 0.0
    start_rss = rss_mib()
    for start in range(0, args.size, BLOCK):
        n = min(BLOCK, args.size - start)
        vectors = clustered_vectors(n, centroids, rng, args.noise)
        documents = synthetic_documents(n, rng)
        ids = [f"d{start + i}" for i in range(n)]
        t = time.perf_counter()
        rows = ((d, "v", {}, v[None, :]) for d, v in zip(ids, vectors, strict=True))
        milvus.upsert(FIELD, DIMENSION, rows, new=set(ids))  # new documents: no delete sent
        dense_s += time.perf_counter() - t
        t = time.perf_counter()
        texts = [analysed_text(tokens) for tokens in analyzer.tokenize(documents)]
        milvus.upsert_texts(
            zip(ids, ["v"] * n, [{}] * n, texts, strict=True), DEFAULT_K1, DEFAULT_B
        )
        sparse_s += time.perf_counter() - t
        t = time.perf_counter()
        milvus.seal(bm25=args.flush_bm25)  # sealed, indexed segments (see --flush-bm25)
        seal_s += time.perf_counter() - t
        if len(query_texts) < args.queries:
            for doc in rng.integers(0, n, max(1, args.queries * n // args.size)):
                words = documents[doc].split()
                k = int(rng.integers(3, 6))
                begin = int(rng.integers(0, max(1, len(words) - k)))
                query_texts.append(" ".join(words[begin : begin + k]))
        done = start + n
        if done % 100_000 == 0 or done == args.size:
            memory.append(
                {
                    "documents": done,
                    "ours_mib": rss_mib() - start_rss,
                    "lite_mib": process_rss_mib(server.pid),
                }
            )
            last = memory[-1]
            print(
                f"{done:,} rows: dense {dense_s:.0f} s, BM25 {sparse_s:.0f} s, "
                f"flush {seal_s:.0f} s, "
                f"ours +{last['ours_mib']:.0f} MiB, Lite {last['lite_mib']:.0f} MiB",
                file=sys.stderr,
            )
    query_texts = (query_texts * 2)[: args.queries]
    analysed = [analysed_text(tokens) for tokens in analyzer.tokenize(query_texts)]
    results["build"] = {"dense_s": dense_s, "sparse_s": sparse_s, "flush_s": seal_s}

    times: dict[str, list[float]] = {"dense": [], "sparse": [], "hybrid": []}
    for vector, text in zip(queries, analysed, strict=True):
        t = time.perf_counter()
        (dense,) = milvus.search(FIELD, vector[None, :], TOP_K)
        times["dense"].append(time.perf_counter() - t)
        t = time.perf_counter()
        (sparse,) = milvus.search_texts([text], TOP_K, None, DEFAULT_K1, DEFAULT_B)
        times["sparse"].append(time.perf_counter() - t)
        t = time.perf_counter()
        (lexical,) = milvus.search_texts([text], FIRST_STAGE, None, DEFAULT_K1, DEFAULT_B)
        (semantic,) = milvus.search(FIELD, vector[None, :], FIRST_STAGE)
        top(zscore_fusion([dict(lexical), dict(semantic)]), TOP_K)
        times["hybrid"].append(time.perf_counter() - t)
    results["one_at_a_time"] = {mode: percentiles(values) for mode, values in times.items()}

    batched: dict[str, float] = {}
    t = time.perf_counter()
    for begin in range(0, args.queries, args.batch):
        milvus.search(FIELD, queries[begin : begin + args.batch], TOP_K)
    batched["dense_qps"] = args.queries / (time.perf_counter() - t)
    t = time.perf_counter()
    for begin in range(0, args.queries, args.batch):
        milvus.search_texts(
            analysed[begin : begin + args.batch], TOP_K, None, DEFAULT_K1, DEFAULT_B
        )
    batched["sparse_qps"] = args.queries / (time.perf_counter() - t)
    results["batched"] = {"batch": args.batch, **batched}
    results["ours_peak_rss_mib"] = rss_mib()
    results["lite_rss_mib"] = process_rss_mib(server.pid)
    milvus.close()
    server.terminate()
    server.wait(30)
    shutil.rmtree(folder, ignore_errors=True)

    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    one = results["one_at_a_time"]
    print("\n| mode | p50 | p99 | batched (per query) |\n|---|---|---|---|")
    for mode, qps in (
        ("dense", batched["dense_qps"]),
        ("sparse", batched["sparse_qps"]),
        ("hybrid", None),
    ):
        cell = f"{1000 / qps:.2f} ms ({qps:.0f} q/s)" if qps else "-"
        print(f"| {mode} | {one[mode]['p50_ms']:.2f} ms | {one[mode]['p99_ms']:.2f} ms | {cell} |")  # type: ignore[index]


if __name__ == "__main__":
    main()
