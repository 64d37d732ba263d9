"""The held-out part of the training data: what training stops early on and what decides
whether a trained model is better than its base. Only the training data is split (by query,
with the seed): test qrels are never read here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from omniretrieve.errors import InputError
from omniretrieve.training.examples import Pair, TrainingData
from omniretrieve.training.settings import TrainSettings

DISTRACTORS = 1000
"""Corpus documents added to the held-out queries' positives and negatives, so that the
held-out ranking is a search, not a choice among a handful."""


@dataclass(frozen=True)
class HeldOut:
    queries: dict[str, str]
    """Query id -> text."""
    corpus: dict[str, str]
    relevant: dict[str, set[str]]

    def to_json(self) -> dict[str, int]:
        return {"queries": len(self.queries), "documents": len(self.corpus)}


def split_held_out(data: TrainingData, settings: TrainSettings) -> tuple[list[Pair], HeldOut]:
    """(the pairs to train on, the held-out set), split by query."""
    train, held = split_pairs(data, settings)
    return train, held_out_set(held, data, settings.seed)


def split_pairs(data: TrainingData, settings: TrainSettings) -> tuple[list[Pair], list[Pair]]:
    """(pairs to train on, held-out pairs): ``settings.held_out`` of the queries (at most
    ``max_held_out``) drawn with the seed; all pairs of a query go to the same side."""
    queries = sorted({p.query for p in data.pairs})
    if len(queries) < 2:
        raise InputError("training needs at least 2 distinct queries", field="data")
    random.Random(settings.seed).shuffle(queries)
    size = max(1, min(settings.max_held_out, round(len(queries) * settings.held_out)))
    held = set(queries[:size])
    return (
        [p for p in data.pairs if p.query not in held],
        [p for p in data.pairs if p.query in held],
    )


def held_out_set(pairs: list[Pair], data: TrainingData, seed: int) -> HeldOut:
    query_ids = {q: f"q{i}" for i, q in enumerate(sorted({p.query for p in pairs}))}
    corpus: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    for number, pair in enumerate(pairs):
        doc_id = pair.positive_id if pair.positive_id is not None else f"pair:{number}"
        corpus[doc_id] = pair.positive
        relevant.setdefault(query_ids[pair.query], set()).add(doc_id)
        for index, negative in enumerate(pair.negatives):
            ids = pair.negative_ids
            corpus.setdefault(ids[index] if ids else f"pair:{number}:{index}", negative)
    others = sorted(set(data.corpus) - set(corpus))
    random.Random(seed).shuffle(others)
    for doc_id in others[:DISTRACTORS]:
        corpus[doc_id] = data.corpus[doc_id]
    return HeldOut({qid: q for q, qid in query_ids.items()}, corpus, relevant)
