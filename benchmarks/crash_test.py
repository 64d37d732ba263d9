"""The full crash test: SIGKILL an ingesting process at random moments, check what survived.

    python benchmarks/crash_test.py [--kills 20] [--limit 5183] [--model all-MiniLM-L6-v2]

A child process (tests/integration/crash_child.py) ingests SciFact into a collection in batches
of 4 and prints the ids of every acknowledged batch; this script kills it after a random delay,
reopens the collection, and checks that every acknowledged id is there with the text it was
given and the vectors the model computes for its passages, and that search answers. A last run
is not killed and must finish the corpus. `make test` runs a reduced version
(tests/integration/test_collection_crash.py).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from omniretrieve import Embedder  # noqa: E402
from omniretrieve.index.collection import Collection  # noqa: E402
from omniretrieve.index.documents import iter_jsonl_documents  # noqa: E402
from tests.builders.crash import run_and_kill  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--limit", type=int, default=5183)
    parser.add_argument("--max-delay", type=float, default=20.0)
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    corpus = ROOT.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
    texts = {}
    for number, record in enumerate(iter_jsonl_documents(corpus)):
        if number >= args.limit:
            break
        texts[str(record["_id"])] = f"{record.get('title', '')} {record['text']}".strip()
    embedder = Embedder(args.model)
    rng = random.Random(args.seed)
    acknowledged: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        delays = [rng.uniform(0.5, args.max_delay) for _ in range(args.kills)] + [None]
        for number, delay in enumerate(delays, start=1):
            acknowledged |= run_and_kill(root, args.model, corpus, delay, args.limit)
            with Collection.open("crash", root=root, embedders={args.model: embedder}) as opened:
                missing = acknowledged - set(opened.document_ids())
                checked = rng.sample(sorted(acknowledged), min(10, len(acknowledged)))
                for doc_id in checked:
                    document = opened.get(doc_id)
                    assert document is not None and document.text == texts[doc_id]
                    spans = opened.spans(doc_id)
                    expected = embedder.encode_texts([document.text[a:b] for a, b in spans])
                    np.testing.assert_allclose(opened.vectors(doc_id), expected, atol=1e-4)
                searchable = bool(opened.search("cell biology", top_k=3)) if len(opened) else True
                what = "finished" if delay is None else f"killed after {delay:.1f}s"
                print(
                    f"run {number:>2} ({what}): {len(acknowledged)} acknowledged, "
                    f"{len(opened)} present, {len(missing)} lost, search ok: {searchable}",
                    flush=True,
                )
                assert not missing and searchable
        assert acknowledged == set(texts)
    print(f"{args.kills} kills: nothing acknowledged was lost; the final run completed the corpus")


if __name__ == "__main__":
    main()
