"""Memory and latency of each seed family on tiny random checkpoints of the real architectures,
on this machine's CPU (float32), loaded through ``Embedder``/``Reranker`` as a user's folder is.

    python benchmarks/seed_families_cpu.py

The checkpoints are the tests' (``tests/builders``): a few layers of width 32, so the numbers
measure the code path (prompting, image processing, batching, pooling), not a real model's cost.
Real sizes are in README's model table; the GPU run of m0 at its real size is
``benchmarks/m0_gpu_throughput.py``.
"""

from __future__ import annotations

import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

TEXTS = [f"def function_{i}(items): return sorted(items)[:{i}]" for i in range(32)]
QUERY = "how to sort a list"


def rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def timed(call, repeats: int = 5) -> float:
    call()  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    import torch

    from omniretrieve import Embedder, Reranker
    from tests.builders.tiny_clip import build_tiny_clip, png_bytes
    from tests.builders.tiny_cross_encoder import build_tiny_cross_encoder
    from tests.builders.tiny_m0 import build_tiny_m0
    from tests.builders.tiny_qwen2 import build_tiny_qwen2_embedder
    from tests.builders.tiny_vlm_embedders import build_tiny_llava_next, build_tiny_qwen25_vl

    torch.set_num_threads(2)
    image = {"image": base64.b64encode(png_bytes((200, 30, 30), (640, 480))).decode()}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        families = [
            ("cross-encoder (bge-reranker, ms-marco)", "reranker", build_tiny_cross_encoder, False),
            ("vlm-reranker (jina-reranker-m0)", "reranker", build_tiny_m0, True),
            ("decoder-embedder (BGE-Code-v1)", "embedder", build_tiny_qwen2_embedder, False),
            ("clip (CLIP)", "embedder", build_tiny_clip, True),
            ("vlm-embedder (BGE-VL-Screenshot)", "embedder", build_tiny_qwen25_vl, True),
            ("vlm-embedder (BGE-VL-v1.5)", "embedder", build_tiny_llava_next, True),
        ]
        for name, kind, builder, images in families:
            folder = builder(root / name.split()[0].replace("/", "-") / "model")
            before = rss_mib()
            started = time.perf_counter()
            model = Reranker(folder) if kind == "reranker" else Embedder(folder)
            load_s = time.perf_counter() - started
            added = rss_mib() - before
            if kind == "reranker":
                text_ms = timed(lambda m=model: m.rerank(QUERY, TEXTS[:16]))
                image_ms = timed(lambda m=model: m.rerank(QUERY, [image] * 4)) if images else None
                per = "16 text pairs", "4 image pairs"
            else:
                text_ms = timed(lambda m=model: m.encode(TEXTS))
                image_ms = timed(lambda m=model: m.encode([image] * 4)) if images else None
                per = "32 texts", "4 images (640x480)"
            rows.append((name, load_s, added, per[0], text_ms, per[1], image_ms))
            del model
    print("| family | load | RSS added | text batch | ms | image batch | ms |")
    print("|---|---|---|---|---|---|---|")
    for name, load_s, added, text_batch, text_ms, image_batch, image_ms in rows:
        image_cell = f"{image_ms:.0f}" if image_ms is not None else "-"
        print(
            f"| {name} | {load_s:.2f} s | {added:.0f} MiB | {text_batch} | {text_ms:.0f} | "
            f"{image_batch if image_ms is not None else '-'} | {image_cell} |"
        )


if __name__ == "__main__":
    main()
