"""Reranking page images out of a collection with jina-reranker-m0's architecture, served over
HTTP, with request merging on and off: pairs per second and per-request p50 / p99.

    python benchmarks/m0_collection_rerank.py [--device cuda] [--pages 64] [--clients 8]
        [--requests 32] [--candidates 8] [--size real|tiny]

A collection of ``--pages`` page images (a tiny CLIP embeds them; it only picks candidates) is
searched by ``--requests`` queries; each query's top ``--candidates`` pages go to
``POST /v1/rerank`` as images, ``--clients`` requests at a time, against an in-process server
twice: with merging (waiting requests share model batches, ``max_batch_items=64``) and without
(``max_batch_items=1``: one request per model batch). ``--size real`` builds the reranker at
Qwen2-VL-2B's size with random weights (see ``m0_gpu_throughput.py``; only speed means
anything); ``--size tiny`` is a smoke run that fits a CPU. The same scores come back either
way (checked).
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def page(number: int, size: tuple[int, int]) -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (250, 248 - number % 40, 240))
    draw = ImageDraw.Draw(image)
    for line in range(0, size[1], 40):
        draw.line((40, line, size[0] - 40, line), fill=(number % 200, 30, 30), width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(client, bodies: list[dict], clients: int) -> tuple[float, list[float], list[dict]]:
    latencies: list[float] = [0.0] * len(bodies)
    answers: list[dict] = [{}] * len(bodies)
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            started = time.perf_counter()
            response = client.post("/v1/rerank", json=bodies[index])
            latencies[index] = time.perf_counter() - started
            assert response.status_code == 200, response.text
            answers[index] = response.json()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", choices=["real", "tiny"], default="real")
    parser.add_argument("--pages", type=int, default=64)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--candidates", type=int, default=8)
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from omniretrieve import Embedder
    from omniretrieve.index.collection import Collection, CollectionSettings
    from omniretrieve.server.app import create_app
    from omniretrieve.server.config import ServerConfig
    from tests.builders.tiny_clip import build_tiny_clip
    from tests.builders.tiny_m0 import build_tiny_m0

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clip = build_tiny_clip(root / "clip")
        reranker = root / "jina-reranker-m0"
        if args.size == "real":
            from m0_gpu_throughput import build

            reranker.mkdir()
            build(reranker)
        else:
            build_tiny_m0(reranker)
        size = (1700, 2200) if args.size == "real" else (112, 140)
        pages = [page(n, size) for n in range(args.pages)]
        settings = CollectionSettings(embedders=(str(clip),), ocr_images=False)
        with Collection.create(
            "pages", root=root, settings=settings, embedders={str(clip): Embedder(clip)}
        ) as collection:
            collection.upsert([{"id": f"p{n}", "image": p} for n, p in enumerate(pages)])
            queries = [f"page {n} about tax rates" for n in range(args.requests)]
            found = collection.search_many(queries, mode="dense", top_k=args.candidates)
        by_id = {f"p{n}": p for n, p in enumerate(pages)}
        bodies = [
            {
                "model": "jina-reranker-m0",
                "query": query,
                "documents": [{"image": by_id[h.doc_id]} for h in hits],
                "return_documents": False,
            }
            for query, hits in zip(queries, found, strict=True)
        ]
        rows, scores = [], []
        for merging, items in (("on", 64), ("off", 1)):
            config = ServerConfig(
                models=(str(reranker),),
                device=args.device,
                dtype="bfloat16" if args.device != "cpu" else "auto",
                max_batch_items=items,
                batch_wait_ms=5.0,
                load_in_background=False,
            )
            with TestClient(create_app(config)) as client:
                run(client, bodies[:2], 2)  # warm-up
                seconds, latencies, answers = run(client, bodies, args.clients)
                batches = [
                    line
                    for line in client.get("/metrics").text.splitlines()
                    if line.startswith("omniretrieve_batch_requests_count")
                ]
            pairs = sum(len(b["documents"]) for b in bodies)
            rows.append(
                {
                    "merging": merging,
                    "requests": len(bodies),
                    "clients": args.clients,
                    "pairs": pairs,
                    "pairs_per_s": round(pairs / seconds, 2),
                    "p50_s": round(statistics.median(latencies), 3),
                    "p99_s": round(percentile(latencies, 0.99), 3),
                    "model_batches": batches,
                }
            )
            scores.append(
                [{r["index"]: r["relevance_score"] for r in a["results"]} for a in answers]
            )
            print(json.dumps(rows[-1]), flush=True)
        worst = max(
            abs(a[i] - b[i])
            for ra, rb in zip(*scores, strict=True)
            for a, b in [(ra, rb)]
            for i in a
        )
        print(json.dumps({"size": args.size, "device": args.device, "rows": rows,
                          "max_score_difference_on_vs_off": worst}))  # fmt: skip
        ratio = rows[0]["pairs_per_s"] / rows[1]["pairs_per_s"]
        print(f"merging on / off: {ratio:.2f}x pairs/s", flush=True)


if __name__ == "__main__":
    main()
