"""omniretrieve-hybrid-reranker through the public Reranker API."""

from __future__ import annotations

import json

import pytest

from omniretrieve.errors import InputError, OmniRetrieveError
from omniretrieve.models.hybrid_reranker import FEATURES, PARAMS_FILE

DOCS = [
    "The stock market fell sharply on Monday.",
    "Cats are obligate carnivores; they eat fish, birds and mice.",
    "Paris is the capital of France.",
    "Dogs were domesticated from wolves.",
]


def test_ranks_best_first_with_scores_in_unit_interval(hybrid_reranker) -> None:
    response = hybrid_reranker.rerank("what do cats eat?", DOCS)
    scores = [r.relevance_score for r in response.results]
    assert response.results[0].index == 1
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert sorted(r.index for r in response.results) == [0, 1, 2, 3]
    assert response.results[0].document is not None
    assert response.results[0].document.text == DOCS[1]  # type: ignore[union-attr]
    assert response.total_tokens > 0


def test_top_n_and_no_documents(hybrid_reranker) -> None:
    response = hybrid_reranker.rerank("capital of France", DOCS, top_n=2, return_documents=False)
    assert len(response.results) == 2 and response.results[0].index == 2
    assert all(r.document is None for r in response.results)
    payload = response.to_json()
    assert "document" not in payload["results"][0]
    assert payload["model"] == "omniretrieve-hybrid-reranker"


def test_single_document_and_top_n_larger_than_list(hybrid_reranker) -> None:
    response = hybrid_reranker.rerank("cats", ["Cats eat fish."], top_n=10)
    assert len(response.results) == 1 and 0.0 <= response.results[0].relevance_score <= 1.0


def test_long_document_is_truncated_and_flagged(hybrid_reranker) -> None:
    long_doc = "cats eat fish. " * 2000
    response = hybrid_reranker.rerank("cats", ["dogs", long_doc])
    flags = {r.index: r.truncated for r in response.results}
    assert flags == {0: False, 1: True}


def test_bad_requests(hybrid_reranker) -> None:
    with pytest.raises(InputError, match="documents is an empty list"):
        hybrid_reranker.rerank("q", [])
    with pytest.raises(InputError, match="query is an empty text"):
        hybrid_reranker.rerank("  ", DOCS)
    with pytest.raises(InputError, match="top_n"):
        hybrid_reranker.rerank("q", DOCS, top_n=0)
    with pytest.raises(InputError, match=r"documents\[0\] is image"):
        hybrid_reranker.rerank("q", [{"image": "aGk="}])


def test_an_embedder_is_not_a_reranker() -> None:
    from omniretrieve import Reranker

    with pytest.raises(OmniRetrieveError, match="not a reranker"):
        Reranker("all-MiniLM-L6-v2")


def test_weights_were_fitted_on_train_queries_only() -> None:
    params = json.loads(PARAMS_FILE.read_text())
    assert tuple(params["features"]) == FEATURES
    assert "train split" in params["fitted_on"] and "test" not in params["fitted_on"]
