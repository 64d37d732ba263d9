"""A collection reranks each document as the user gave it: the text OCR reads in an image is an
index artifact (it makes the image findable by text embedders and BM25), so an image-capable
reranker reads an image-only document as its image alone and a text + image document as its
own text and its image; only a text-only reranker reads the OCR text."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from omniretrieve import Embedder, Reranker
from omniretrieve.index.collection import Collection, CollectionSettings
from omniretrieve.models.registry import DEFAULT_EMBEDDER
from tests.builders.documents import text_image
from tests.builders.tiny_cross_encoder import build_tiny_cross_encoder
from tests.builders.tiny_m0 import build_tiny_m0

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)

PAGE = base64.b64encode(text_image(["Aspirin lowers the risk", "of a heart attack."])).decode()
FIGURE = base64.b64encode(text_image(["Figure 2: dose response"])).decode()
DOCUMENTS = [
    {"id": "page", "image": PAGE},
    {"id": "figure", "text": "Aspirin dose and heart attack risk.", "image": FIGURE},
    {"id": "note", "text": "Aspirin is an old drug for pain and fever."},
]
QUERY = "aspirin heart attack"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rerank-what-it-is")
    return {"m0": build_tiny_m0(root / "m0"), "cross": build_tiny_cross_encoder(root / "cross")}


@pytest.fixture(scope="module")
def collection(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    settings = CollectionSettings(ocr_images=True, rerank_candidates=10)
    collection = Collection.create(
        "pages",
        root=tmp_path_factory.mktemp("collections"),
        settings=settings,
        embedders={DEFAULT_EMBEDDER: Embedder(DEFAULT_EMBEDDER)},
        rerankers={str(m): Reranker(m) for m in models.values()},
    )
    collection.upsert(DOCUMENTS)
    yield collection
    collection.close()


def test_ocr_text_is_indexed(collection) -> None:
    hits = {h.doc_id: h for h in collection.search(QUERY, mode="sparse", top_k=3)}
    assert "heart attack" in hits["page"].text.lower()  # the page is found by its OCR text
    assert hits["figure"].text.startswith("Aspirin dose and heart attack risk.")
    assert "dose response" in hits["figure"].text.lower()


def test_an_image_reranker_reads_pages_as_images_and_figures_as_given(collection, models):
    hits = collection.search(QUERY, mode="hybrid", top_k=3, rerank=str(models["m0"]))
    assert {h.doc_id for h in hits} == {"page", "figure", "note"}
    as_given = {d["id"]: {k: v for k, v in d.items() if k != "id"} for d in DOCUMENTS}
    reranker = Reranker(models["m0"])
    for hit in hits:
        expected = reranker.rerank(QUERY, [as_given[hit.doc_id]], return_documents=False)
        assert hit.scores["rerank"] == pytest.approx(
            expected.results[0].relevance_score, abs=1e-5
        ), hit.doc_id


def test_a_text_reranker_reads_the_ocr_text(collection, models) -> None:
    hits = collection.search(QUERY, mode="hybrid", top_k=3, rerank=str(models["cross"]))
    assert all(h.warning is None for h in hits)
    reranker = Reranker(models["cross"])
    for hit in hits:
        expected = reranker.rerank(QUERY, [hit.text], return_documents=False)
        assert hit.scores["rerank"] == pytest.approx(
            expected.results[0].relevance_score, abs=1e-5
        ), hit.doc_id


def test_an_unchanged_upsert_keeps_where_the_ocr_text_starts(collection, models) -> None:
    collection.upsert(DOCUMENTS)  # the same documents again: nothing to read or embed
    test_an_image_reranker_reads_pages_as_images_and_figures_as_given(collection, models)


def test_given_text_of_every_kind_of_document() -> None:
    from omniretrieve.index.records import StoredDocument

    def given(text: str, **metadata) -> str:
        return StoredDocument("d", text, metadata, image="x").given_text

    assert given("own words") == "own words"
    assert given("own words\nOCR words", ocr=True, ocr_from=9) == "own words"
    assert given("OCR words", ocr=True, ocr_from=0) == ""
    assert given("OCR words", ocr=True, text_source="ocr") == ""  # a scanned page of a folder
    assert given("layer text", ocr=False, text_source="pdf-text") == "layer text"
    assert given("older", ocr=True) == "older"  # written before ocr_from: all of it
