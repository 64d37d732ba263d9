"""Memory of our process as a real ``Collection`` grows, documents in the folder vs in Milvus.

    python benchmarks/held_memory.py [--sizes 25000,50000,100000,200000] [--queries 50]

Two Milvus-native collections (``vector_store="milvus"``, ``sparse="milvus"``) receive the same
documents through ``Collection.upsert``, one batch of the CLI's size after another:
``storage="folder"`` (the folder is the source of truth: the opened collection holds every
document and passage vector) and ``storage="milvus"`` (Milvus alone holds them). Milvus Lite
runs as its own server on 127.0.0.1 (``milvus-lite server``), so the resident memory measured
is our process's alone; the server's is printed beside it. At each size: documents/s of the
upserts (and the seal of their vector rows), our RSS (after ``gc.collect()``), then
``--queries`` hybrid searches (p50/p99) and our RSS after them; at the end, the time and RSS
of opening the collection again from its folder.

The documents are the short Zipf documents of ``scale_1m.py`` (12-24 words); their vectors come
from a stand-in embedder (384-d unit vectors seeded by the text: embedding 200k texts with
MiniLM would take most of an hour on two cores, and what is measured here does not depend on
what the vectors mean). Self-tuning is off (its cost is measured by ``self_tuning_cost.py``).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from scale_1m import percentiles, rss_mib, synthetic_documents  # noqa: E402
from scale_1m_milvus import process_rss_mib, start_server  # noqa: E402

from omniretrieve.index.collection import Collection, CollectionSettings  # noqa: E402

DIMENSION = 384
CHUNK = 5_000
WORD = re.compile(r"\S+")


class SeededEmbedder:
    """384-d unit vectors seeded by each text's hash; passages split at 256 words."""

    model_id = "seeded-384"
    dimension = DIMENSION
    max_length = 256
    modalities = frozenset({"text"})
    languages = None
    model: Any = None

    def token_offsets(self, text: str) -> Iterable[tuple[int, int]]:
        return [m.span() for m in WORD.finditer(text)]

    def encode_texts(self, texts: Sequence[str], **options: Any) -> np.ndarray:
        rows = np.empty((len(texts), DIMENSION), dtype=np.float32)
        for row, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            vector = np.random.default_rng(seed).standard_normal(DIMENSION)
            rows[row] = vector / np.linalg.norm(vector)
        return rows

    def encode(self, inputs: Any, **options: Any) -> Any:
        raise NotImplementedError("text only")


def measure(storage: str, uri: str, root: Path, texts: list[str], sizes: list[int],
            queries: list[str], server_pid: int) -> list[dict[str, Any]]:  # fmt: skip
    embedder = SeededEmbedder()
    models = {embedder.model_id: embedder}
    settings = CollectionSettings(
        embedders=(embedder.model_id,), vector_store="milvus", sparse="milvus",
        storage=storage, milvus_uri=uri, language="en", fusion="zscore",
    )  # type: ignore[arg-type]  # fmt: skip
    collection = Collection.create(storage, root=root, settings=settings, embedders=models)
    collection.options.auto_tune = False
    gc.collect()
    start_rss = rss_mib()
    rows, done = [], 0
    for size in sizes:
        began = time.perf_counter()
        for start in range(done, size, CHUNK):
            chunk_began = time.perf_counter()
            batch = [
                {"id": f"d{i}", "text": texts[i]} for i in range(start, min(start + CHUNK, size))
            ]
            collection.upsert(batch)
            print(
                f"  {storage}: {start + len(batch):,} documents, the last {len(batch):,} in "
                f"{time.perf_counter() - chunk_began:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            del batch
        # a Milvus server seals segments by itself, the Lite server does not: seal as a
        # collection in a Lite file does (unsealed rows are searched ~7x slower)
        collection._vectors._milvus.seal()  # type: ignore[attr-defined]
        seconds = time.perf_counter() - began
        done = size
        gc.collect()
        after_build = rss_mib()
        latencies = []
        for query in queries:
            began = time.perf_counter()
            collection.search(query, top_k=10, mode="hybrid")
            latencies.append(time.perf_counter() - began)
        gc.collect()
        row = {
            "storage": storage,
            "documents": len(collection),
            "upsert_docs_per_s": round((size - (rows[-1]["target"] if rows else 0)) / seconds),
            "target": size,
            "rss_start_mib": round(start_rss),
            "rss_over_start_mib": round(after_build - start_rss),
            "rss_after_queries_mib": round(rss_mib() - start_rss),
            "hybrid": {k: round(v, 1) for k, v in percentiles(latencies).items()},
            "milvus_server_rss_mib": round(process_rss_mib(server_pid)),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    collection.close()
    gc.collect()
    before_open = rss_mib()
    began = time.perf_counter()
    reopened = Collection.open(storage, root=root, embedders=models)
    reopened.search(queries[0], top_k=10, mode="hybrid")
    gc.collect()
    rows[-1]["reopen_seconds"] = round(time.perf_counter() - began, 1)
    rows[-1]["reopen_rss_mib"] = round(rss_mib() - before_open)
    print(json.dumps({"storage": storage, "reopen_seconds": rows[-1]["reopen_seconds"],
                      "reopen_rss_mib": rows[-1]["reopen_rss_mib"]}), flush=True)  # fmt: skip
    reopened.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="25000,50000,100000,200000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--storage", default="folder,milvus")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)
    texts = synthetic_documents(sizes[-1], rng)
    drawn = rng.integers(0, sizes[-1], args.queries)
    queries = [" ".join(texts[int(i)].split()[:4]) for i in drawn]
    storages = args.storage.split(",")
    if len(storages) > 1:  # each in a fresh process: memory one run freed is not the next's
        for storage in storages:
            command = [sys.executable, __file__, "--sizes", args.sizes, "--queries",
                       str(args.queries), "--storage", storage]  # fmt: skip
            subprocess.run(command, check=True)
        return
    results = []
    for storage in storages:
        work = Path(tempfile.mkdtemp(prefix=f"held-{storage}-"))
        server, uri = start_server(work / "milvus")
        try:
            results += measure(storage, uri, work / "collections", texts, sizes, queries,
                               server.pid)  # fmt: skip
        finally:
            server.terminate()
            server.wait()
            shutil.rmtree(work, ignore_errors=True)
    print("| storage | documents | upsert docs/s | our RSS over start | after queries | "
          "hybrid p50 / p99 ms | Milvus server RSS |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for row in results:
        print(f"| {row['storage']} | {row['documents']:,} | {row['upsert_docs_per_s']} | "
              f"+{row['rss_over_start_mib']} MiB | +{row['rss_after_queries_mib']} MiB | "
              f"{row['hybrid']['p50_ms']} / {row['hybrid']['p99_ms']} | "
              f"{row['milvus_server_rss_mib']} MiB |")  # fmt: skip


if __name__ == "__main__":
    main()
