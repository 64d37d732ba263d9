"""Child process for the crash test: ingests documents and prints what was acknowledged.

python -m tests.integration.crash_child ROOT MODEL_DIR CORPUS.jsonl BATCH LIMIT [STORAGE]

STORAGE ``milvus``: a collection whose documents Milvus alone holds (Milvus Lite in this
process, killed with it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omniretrieve.index.collection import Collection, CollectionSettings
from omniretrieve.index.documents import iter_jsonl_documents
from tests.builders.crash import crash_embedder


def main() -> None:
    root, model_dir, corpus = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    batch, limit = int(sys.argv[4]), int(sys.argv[5])
    storage = sys.argv[6] if len(sys.argv) > 6 else "folder"
    embedders = {model_dir: crash_embedder(model_dir)}
    if "crash" in Collection.names(root):
        collection = Collection.open("crash", root=root, embedders=embedders)
    else:
        settings = CollectionSettings(embedders=(model_dir,))
        if storage == "milvus":
            settings = CollectionSettings(
                embedders=(model_dir,), vector_store="milvus", sparse="milvus", storage="milvus"
            )
        collection = Collection.create("crash", root=root, settings=settings, embedders=embedders)
    print("READY", flush=True)
    documents = []
    for number, record in enumerate(iter_jsonl_documents(corpus)):
        if number >= limit:
            break
        documents.append(record)
    for start in range(0, len(documents), batch):
        chunk = documents[start : start + batch]
        collection.upsert(chunk)
        print("ACK " + json.dumps([str(d["_id"]) for d in chunk]), flush=True)
        if start and start % (batch * 8) == 0:
            collection.flush()  # exercise snapshots too
            print("FLUSHED", flush=True)
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
