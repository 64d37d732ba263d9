"""Ingest throughput against workers: the first N SciFact documents indexed into a new
Milvus-native collection (``vector_store="milvus"``, ``sparse="milvus"``) with the embedding in
this process, on N local processes (``index --workers N``), and on a Dask cluster
(``--dask-scheduler``; here a ``LocalCluster`` on 127.0.0.1 started by this script).

    python benchmarks/scale_out_ingest.py [--documents 1000] [--workers 1 2]

Prints documents per second per setting and the ratio to the single process. This machine
has 2 cores: extra workers split the same cores, so the numbers show the overhead of the
machinery more than a gain; on a cluster each worker brings its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from omniretrieve import Embedder  # noqa: E402
from omniretrieve.index.collection import Collection, CollectionSettings  # noqa: E402
from omniretrieve.index.workers import DaskPool, PooledEmbedder, ProcessPool  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
MODEL = "all-MiniLM-L6-v2"


def documents(count: int) -> list[dict[str, str]]:
    found = []
    with DATASET.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            found.append({"id": record["_id"], "text": f"{record['title']} {record['text']}"})
            if len(found) == count:
                break
    return found


def ingest(name: str, docs: list[dict[str, str]], root: Path, embedder: object) -> float:
    settings = CollectionSettings(
        embedders=(MODEL,), vector_store="milvus", sparse="milvus", fusion="zscore"
    )
    started = time.perf_counter()
    with Collection.create(
        name, root=root, settings=settings, embedders={MODEL: embedder}
    ) as collection:  # type: ignore[dict-item]
        collection.upsert(docs)
        collection.flush()
    return len(docs) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[2])
    args = parser.parse_args()
    docs = documents(args.documents)
    root = Path(tempfile.mkdtemp(prefix="scale-out-"))
    local = Embedder(MODEL)
    rates = {"1 process": ingest("single", docs, root, local)}
    for workers in args.workers:
        pool = ProcessPool(workers)
        pool.map(MODEL, local.dtype, [["warm up"]] * workers, {})  # load the model first
        rates[f"--workers {workers}"] = ingest(
            f"p{workers}", docs, root, PooledEmbedder(local, pool, reference=MODEL)
        )
        pool.close()
        from distributed import LocalCluster

        with LocalCluster(
            n_workers=workers,
            threads_per_worker=max(1, 2 // workers),
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster:
            dask = DaskPool(cluster.scheduler_address)
            dask.map(MODEL, local.dtype, [["warm up"]] * workers, {})
            rates[f"Dask, {workers} workers"] = ingest(
                f"d{workers}", docs, root, PooledEmbedder(local, dask, reference=MODEL)
            )
            dask.close()
    base = rates["1 process"]
    print(f"| setting ({len(docs)} SciFact documents) | documents/s | vs 1 process |")
    print("|---|---|---|")
    for setting, rate in rates.items():
        print(f"| {setting} | {rate:.1f} | {rate / base:.2f}x |")


if __name__ == "__main__":
    main()
