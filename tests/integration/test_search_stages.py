"""A search reads as one sequence of stages: planning -> first stages -> fusion -> rerank ->
diversity -> hits, each stage a module of :mod:`omniretrieve.index.pipeline` entered once per
search, in that order, whatever the number of queries (traced with ``sys.setprofile``)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from omniretrieve.index.collection import Collection
from tests.builders.documents import COPIES_QUERY, NEAR_COPIES

PACKAGE = "omniretrieve.index.pipeline."
STAGES = ["planning", "first_stages", "fusing", "reranking", "diversifying", "hits"]


@contextmanager
def entered_stages() -> Iterator[list[str]]:
    """The pipeline's stage modules in the order the search entered them; a module is listed
    again each time the search comes back to it after another stage."""
    path: list[str] = []

    def profile(frame, event: str, _arg) -> Callable | None:
        if event == "call":
            module = frame.f_globals.get("__name__", "")
            if module.startswith(PACKAGE):
                stage = module.removeprefix(PACKAGE)
                if stage != "state" and (not path or path[-1] != stage):
                    path.append(stage)
        return None

    sys.setprofile(profile)
    try:
        yield path
    finally:
        sys.setprofile(None)


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory):
    collection = Collection.create("stages", root=tmp_path_factory.mktemp("collections"))
    collection.upsert(NEAR_COPIES)
    yield collection
    collection.close()


def test_a_search_walks_each_stage_once_in_order(collection) -> None:
    queries = [COPIES_QUERY, "statins and cholesterol", "exercise"]
    with entered_stages() as path:
        results = collection.search_many(
            queries, top_k=3, rerank=True, diversity=0.5, collapse_duplicates=True
        )
    assert path == STAGES
    assert len(results) == 3 and all(results)
    assert all("rerank" in hit.scores for hits in results for hit in hits)


def test_a_plain_search_skips_what_it_does_not_ask_for(collection) -> None:
    with entered_stages() as path:
        collection.search_many([COPIES_QUERY, "exercise"], top_k=3)
    assert path == ["planning", "first_stages", "fusing", "hits"]


def test_reranking_a_supplied_first_stage_starts_from_it(collection) -> None:
    supplied = {"copy-1": 3.0, "statins": 2.0, "exercise": 1.0}
    with entered_stages() as path:
        (hits,) = collection.rerank_supplied([COPIES_QUERY], [supplied], top_k=3)
    assert path == ["planning", "first_stages", "reranking", "hits"]
    assert {h.doc_id for h in hits} == set(supplied)
