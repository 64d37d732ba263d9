"""What self-tuning costs: SciFact indexed from scratch with ``fusion="auto"`` (the upsert
tunes at its end) against the same ingest with tuning off, and the fit alone per 10k
documents.

    python benchmarks/self_tuning_cost.py [--documents 5183] [--out self_tuning_cost.json]

Each ingest embeds every document afresh (no embedding cache) with the bundled MiniLM in this
machine's default precision, into a new collection in a temporary folder; the order of the
two runs alternates with ``--repeat`` so neither always gets a warm CPU. Prints both times,
their ratio (the goal: at most 1.2x), and the fit's seconds, scaled to 10k documents.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from _scifact import SCIFACT

from omniretrieve import Embedder
from omniretrieve.eval.datasets import load_corpus
from omniretrieve.index.collection import Collection, CollectionSettings


def ingest(documents: list[dict[str, Any]], embedder: Embedder, tune: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        collection = Collection.create(
            "scifact",
            root=Path(folder),
            settings=CollectionSettings(fusion="auto"),
            embedders={embedder.model_id: embedder},
        )
        with collection:
            collection.options.auto_tune = tune
            started = time.perf_counter()
            collection.upsert(documents)
            collection.flush()
            seconds = time.perf_counter() - started
            tuning = collection.tuning()
    fit = tuning.seconds if tuning is not None else None
    return {"tune": tune, "seconds": round(seconds, 1), "fit_seconds": fit}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    corpus = list(load_corpus(SCIFACT / "corpus.jsonl").values())[: args.documents]
    documents = [{"id": d.doc_id, "text": d.full_text} for d in corpus if not d.empty]
    embedder = Embedder()
    embedder.encode_texts(["warm up"])
    runs = []
    for number in range(args.repeat):
        order = (False, True) if number % 2 == 0 else (True, False)
        runs += [ingest(documents, embedder, tune) for tune in order]
    plain = [r["seconds"] for r in runs if not r["tune"]]
    tuned = [r["seconds"] for r in runs if r["tune"]]
    fits = [r["fit_seconds"] for r in runs if r["tune"]]
    result = {
        "documents": len(documents),
        "runs": runs,
        "ingest_seconds_without_tuning": min(plain),
        "ingest_seconds_with_tuning": min(tuned),
        "ratio": round(min(tuned) / min(plain), 3),
        "fit_seconds": min(fits),
        "fit_seconds_per_10k_documents": round(min(fits) * 10_000 / len(documents), 1),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
