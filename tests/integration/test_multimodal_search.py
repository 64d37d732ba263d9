"""Multimodal collections end to end on tiny random checkpoints: documents of text, images and
both; rerankers reading each document as what it is; image and composed queries. Every number
is checked against the public API on the same inputs (``Reranker.rerank``,
``Embedder.encode`` followed by exact search)."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder, Reranker
from omniretrieve.index.collection import Collection, CollectionSettings
from tests.builders.tiny_clip import build_tiny_clip, png_bytes
from tests.builders.tiny_cross_encoder import build_tiny_cross_encoder
from tests.builders.tiny_m0 import build_tiny_m0
from tests.builders.tiny_vlm_embedders import build_tiny_llava_next

COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30)]


def b64(color: tuple[int, int, int]) -> str:
    return base64.b64encode(png_bytes(color, (64, 56))).decode()


DOCUMENTS = [
    {"id": "text", "text": "A red square drawn on white paper."},
    {"id": "photo", "image": b64(COLORS[0])},
    {"id": "captioned", "text": "A green square, captioned.", "image": b64(COLORS[1])},
    {"id": "blue", "image": b64(COLORS[2])},
    {"id": "notes", "text": "Yellow squares and blue circles."},
]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("multimodal")
    return {
        "clip": build_tiny_clip(root / "clip"),
        "m0": build_tiny_m0(root / "m0"),
        "cross": build_tiny_cross_encoder(root / "cross"),
        "bge-vl": build_tiny_llava_next(root / "bge-vl", architecture="LLaVANextForEmbedding"),
    }


@pytest.fixture(scope="module")
def clip_collection(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    clip = str(models["clip"])
    settings = CollectionSettings(embedders=(clip,), ocr_images=False, rerank_candidates=10)
    collection = Collection.create(
        "pictures",
        root=tmp_path_factory.mktemp("collections"),
        settings=settings,
        embedders={clip: Embedder(models["clip"])},
        rerankers={
            str(models["m0"]): Reranker(models["m0"]),
            str(models["cross"]): Reranker(models["cross"]),
        },
    )
    collection.upsert(DOCUMENTS)
    yield collection
    collection.close()


def as_reranker_reads(document: dict) -> dict:
    """A document as a multimodal reranker should see it: its text, its image, or both."""
    return {k: document[k] for k in ("text", "image") if k in document}


def test_an_image_reranker_reads_each_document_as_what_it_is(clip_collection, models) -> None:
    query = "a red square"
    hits = clip_collection.search(query, mode="hybrid", top_k=5, rerank=str(models["m0"]))
    assert {h.doc_id for h in hits} == {d["id"] for d in DOCUMENTS}
    assert all("rerank" in h.scores and h.warning is None for h in hits)
    by_id = {d["id"]: d for d in DOCUMENTS}
    expected = Reranker(models["m0"]).rerank(
        query, [as_reranker_reads(by_id[h.doc_id]) for h in hits], return_documents=False
    )
    for result in expected.results:
        assert hits[result.index].scores["rerank"] == pytest.approx(
            result.relevance_score, abs=1e-5
        )
    assert [h.scores["rerank"] for h in hits] == sorted(
        (h.scores["rerank"] for h in hits), reverse=True
    )


def test_a_text_reranker_flags_the_images_it_cannot_read(clip_collection, models) -> None:
    hits = clip_collection.search("a red square", top_k=5, rerank=str(models["cross"]))
    assert len(hits) == 5
    unread = [h for h in hits if h.warning is not None]
    assert {h.doc_id for h in unread} == {"photo", "blue"}
    assert all("rerank" not in h.scores and "reads text only" in h.warning for h in unread)
    read = [h for h in hits if h.warning is None]
    assert hits[: len(read)] == read  # scored candidates first, the unread ones after them
    texts = [h.text for h in read]
    expected = Reranker(models["cross"]).rerank("a red square", texts, return_documents=False)
    for result in expected.results:
        assert read[result.index].scores["rerank"] == pytest.approx(
            result.relevance_score, abs=1e-5
        )
    # the unread ones keep their first-stage order
    fused = [h.scores["fused"] for h in unread]
    assert fused == sorted(fused, reverse=True)


def exact_search(query_vector: np.ndarray, documents: dict[str, np.ndarray]) -> list[str]:
    scores = {d: float(v @ query_vector) for d, v in documents.items()}
    return sorted(scores, key=lambda d: -scores[d])


def test_image_queries_search_images_and_texts(clip_collection, models) -> None:
    embedder = Embedder(models["clip"])
    query = {"image": b64(COLORS[2])}
    hits = clip_collection.search(query, mode="hybrid", top_k=5)
    assert all(set(h.scores) <= {f"dense:{models['clip']}", "fused"} for h in hits)
    dense = clip_collection.search(query, mode="dense", top_k=5)
    query_vector = embedder.encode([query], task="retrieval.query").embeddings[0]
    best = {
        d: max(float(row @ query_vector) for row in clip_collection.vectors(d))
        for d in clip_collection.document_ids()
    }
    assert [h.doc_id for h in dense] == sorted(best, key=lambda d: -best[d])
    for hit in dense:
        assert hit.score == pytest.approx(best[hit.doc_id], abs=1e-5)
    with pytest.raises(Exception, match="image without text"):
        clip_collection.search(query, mode="sparse")


def test_an_image_query_with_a_text_reranker_is_not_reranked(clip_collection, models) -> None:
    hits = clip_collection.search({"image": b64(COLORS[0])}, top_k=3, rerank=str(models["cross"]))
    assert len(hits) == 3 and all("query is an image" in h.warning for h in hits)


def test_composed_queries_through_a_bge_vl_collection(models, tmp_path: Path) -> None:
    model = str(models["bge-vl"])
    embedder = Embedder(models["bge-vl"])
    settings = CollectionSettings(embedders=(model,), ocr_images=False)
    with Collection.create(
        "composed", root=tmp_path, settings=settings, embedders={model: embedder}
    ) as collection:
        collection.upsert([d for d in DOCUMENTS if "image" in d])
        composed = {"text": "make it blue", "image": b64(COLORS[0])}
        hits = collection.search(composed, mode="dense", top_k=3)
        query_vector = embedder.encode([composed], task="retrieval.query").embeddings[0]
        # a document's passages: its text, then its image, each embedded as a candidate
        for document in (d for d in DOCUMENTS if "image" in d):
            parts = [{"text": document["text"]}] if "text" in document else []
            parts.append({"image": document["image"]})
            np.testing.assert_allclose(
                collection.vectors(document["id"]), embedder.encode(parts).embeddings, atol=1e-5
            )
        best = {
            d: float((collection.vectors(d) @ query_vector).max())
            for d in collection.document_ids()
        }
        assert [h.doc_id for h in hits] == sorted(best, key=lambda d: -best[d])
        for hit in hits:
            assert hit.score == pytest.approx(best[hit.doc_id], abs=1e-4)
