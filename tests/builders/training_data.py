"""A small BEIR folder over the tiny BERT's vocabulary, for fine-tuning tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.builders.tiny_bert import WORDS


def tiny_beir(folder: Path, *, documents: int = 60, queries: int = 30, seed: int = 0) -> Path:
    """corpus.jsonl, queries.jsonl and qrels/{train,test}.tsv: each query is a few words of
    its document (a title and a body, so pseudo-queries can be cut too)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        f"d{i}": (
            " ".join(rng.choice(WORDS) for _ in range(4))
            + ". "
            + " ".join(rng.choice(WORDS) for _ in range(14))
            + "."
        )
        for i in range(documents)
    }
    with (folder / "corpus.jsonl").open("w") as handle:
        for doc_id, text in texts.items():
            handle.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as handle:
        for i in range(queries):
            words = texts[f"d{i}"].split()
            handle.write(json.dumps({"_id": f"q{i}", "text": " ".join(words[5:9])}) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    for split, numbers in (("train", range(queries - 6)), ("test", range(queries - 6, queries))):
        lines = ["query-id\tcorpus-id\tscore"] + [f"q{i}\td{i}\t1" for i in numbers]
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return folder
