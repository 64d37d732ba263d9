"""Cross-lingual pseudo-queries: translations mined from a multilingual field's vectors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from omniretrieve.index.settings import field_name
from omniretrieve.index.store import StoredDocument, StoredState
from omniretrieve.index.tuning.cross_lingual import cross_lingual_queries
from omniretrieve.index.tuning.pseudo_queries import PseudoQuery


def collection(languages_of_field: frozenset[str] | None) -> SimpleNamespace:
    """40 facts, each in English and German (a translation: nearly the same vector), and
    10 English-only documents."""
    rng = np.random.default_rng(0)
    state = StoredState()
    vectors = {}
    language = {}
    for fact in range(40):
        base = rng.standard_normal(16)
        for lang in ("en", "de"):
            doc_id = f"{lang}-{fact}"
            vectors[doc_id] = base + 0.05 * rng.standard_normal(16)
            language[doc_id] = lang
    for extra in range(10):
        vectors[f"en-extra-{extra}"] = rng.standard_normal(16)
        language[f"en-extra-{extra}"] = "en"
    for doc_id, vector in vectors.items():
        state.documents[doc_id] = StoredDocument(doc_id, f"text of {doc_id}")
        unit = (vector / np.linalg.norm(vector)).astype(np.float32)[None, :]
        state.passages.setdefault(field_name("multi"), {})[doc_id] = ([(0, 10)], unit)
    embedder = SimpleNamespace(languages=languages_of_field)
    return SimpleNamespace(
        state=lambda: state,
        document_language=language.__getitem__,
        embedder=lambda model_id: embedder,
    )


def queries(ids: list[str]) -> list[PseudoQuery]:
    return [PseudoQuery(d, f"query from {d}", f"rest of {d}", "span") for d in ids]


def test_translations_are_mined_and_judge_the_query() -> None:
    source = collection(None)
    asked = queries([f"en-{i}" for i in range(20)] + ["en-extra-1", "de-30"])
    mined = cross_lingual_queries(source, asked, ["multi"])
    targets = {q.doc_id: q.target for q in mined}
    assert targets == {**{f"en-{i}": f"de-{i}" for i in range(20)}, "de-30": "en-30"}
    assert all(q.kind == "cross" and q.relevant == q.target for q in mined)
    assert {q.text for q in mined} <= {q.text for q in asked}


def test_one_language_or_an_english_only_field_mines_nothing() -> None:
    asked = queries([f"en-{i}" for i in range(10)])
    assert cross_lingual_queries(collection(frozenset({"en"})), asked, ["multi"]) == []
    source = collection(None)
    english_only = {d: "en" for d in source.state().documents}
    source.document_language = english_only.__getitem__
    assert cross_lingual_queries(source, asked, ["multi"]) == []
