"""A valid ``tuning.json`` and the ways it gets damaged (issue 28, item 3): hand edits, bad
values, wrong types, truncation, bit flips, deep nesting. Shared by the test and
``benchmarks/fault_test.py``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from omniretrieve.index.tuning.fit import Candidate, CollectionTuning, RerankDecision
from omniretrieve.models.registry import DEFAULT_RERANKER


def valid_tuning(embedder: str, reranker: str = DEFAULT_RERANKER) -> CollectionTuning:
    """A fit as tuning writes it: BM25 weighed 0.3, ``embedder`` 0.7, the reranker used."""
    return CollectionTuning(
        method="zscore",
        embedders=(embedder,),
        weights=(0.3, 0.7),
        ndcg=0.61,
        equal_ndcg=0.58,
        alone={"bm25": 0.52, f"dense:{embedder}": 0.49},
        candidates=[
            Candidate("zscore", (0.3, 0.7), 0.61, 0.55),
            Candidate("rrf", (0.5, 0.5), 0.6, 0.5),
        ],
        rerank=RerankDecision(
            reranker=reranker,
            first_stage_share=0.7,
            ndcg_without=0.61,
            ndcg_reranker_most=0.6,
            ndcg=0.63,
            grid={0.5: 0.6, 0.7: 0.63, 1.0: 0.61},
            queries=40,
            candidates=20,
        ),
        queries=40,
        kinds={"lead": 30, "span": 10},
        documents=8,
        universe=8,
        seed=0,
        seconds=1.5,
    )


Damage = Callable[[bytes], bytes]


def edit(change: Callable[[dict[str, Any]], None]) -> Damage:
    """Parse, change, write back (``NaN`` / ``Infinity`` as Python's json writes them)."""

    def damage(raw: bytes) -> bytes:
        data = json.loads(raw)
        change(data)
        return json.dumps(data, indent=2).encode()

    return damage


def put(path: str, value: Any) -> Damage:
    """Set ``a.b`` (or delete it, when ``value`` is :data:`REMOVE`)."""
    *parents, last = path.split(".")

    def change(data: dict[str, Any]) -> None:
        for key in parents:
            data = data[key]
        if value is REMOVE:
            del data[last]
        else:
            data[last] = value

    return edit(change)


REMOVE = object()
NAN, INF = float("nan"), float("inf")


def _flip(raw: bytes) -> bytes:
    data = bytearray(raw)
    data[raw.index(b'"weights"') + 14] ^= 0x10
    return bytes(data)


TUNING_DAMAGES: dict[str, Damage] = {
    "method unknown": put("method", "magic"),
    "method null": put("method", None),
    "method missing": put("method", REMOVE),
    "method a number": put("method", 5),
    "weights empty": put("weights", []),
    "weights missing": put("weights", REMOVE),
    "weights null": put("weights", None),
    "weights one too many": put("weights", [0.3, 0.3, 0.4]),
    "weights one too few": put("weights", [1.0]),
    "weights NaN": put("weights", [NAN, 0.7]),
    "weights Infinity": put("weights", [0.3, INF]),
    "weights -Infinity": put("weights", [-INF, 0.7]),
    "weights 1e308": put("weights", [1e308, 1e308]),
    "weights negative": put("weights", [-0.3, 0.7]),
    "weights strings": put("weights", ["0.3", "0.7"]),
    "weights all zero": put("weights", [0, 0]),
    "weights nested lists": put("weights", [[0.3], [0.7]]),
    "weights booleans": put("weights", [True, False]),
    "embedders empty": put("embedders", []),
    "embedders null": put("embedders", None),
    "embedders a string": put("embedders", "all-MiniLM-L6-v2"),
    "embedders numbers": put("embedders", [1]),
    "first_stage_share a string": put("rerank.first_stage_share", "0.7"),
    "first_stage_share NaN": put("rerank.first_stage_share", NAN),
    "first_stage_share negative": put("rerank.first_stage_share", -1),
    "first_stage_share above 1": put("rerank.first_stage_share", 2),
    "rerank a list": put("rerank", [0.7]),
    "rerank grid key not a number": put("rerank.grid", {"x": 0.5}),
    "rerank grid value NaN": put("rerank.grid", {"0.5": NAN}),
    "rerank reranker null": put("rerank.reranker", None),
    "candidate ndcg NaN": edit(lambda d: d["candidates"][0].update(ndcg=NAN)),
    "candidate method unknown": edit(lambda d: d["candidates"][0].update(method="magic")),
    "candidates not a list": put("candidates", {"zscore": 1}),
    "ndcg NaN": put("ndcg", NAN),
    "alone Infinity": put("alone", {"bm25": INF}),
    "documents negative": put("documents", -5),
    "documents a string": put("documents", "8"),
    "kinds not an object": put("kinds", [1, 2]),
    "fitted_at a number": put("fitted_at", 17),
    "seconds Infinity": put("seconds", INF),
    "file emptied": lambda raw: b"",
    "file cut in half": lambda raw: raw[: len(raw) // 2],
    "file a JSON list": lambda raw: b"[1, 2, 3]",
    "file null": lambda raw: b"null",
    "file nested 100k deep": lambda raw: b"[" * 100_000 + b"]" * 100_000,
    "file bit flipped in the weights": _flip,
    "file not UTF-8": lambda raw: b"\xff\xfe\x00garbage\x81",
}
