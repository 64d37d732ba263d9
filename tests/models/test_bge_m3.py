"""BGE-M3 on a tiny random checkpoint in its real layout, against a reference written here from
FlagEmbedding's ``BGEM3FlagModel`` (its ``encode``, ``_process_token_weights``,
``_process_colbert_vecs``, ``compute_lexical_matching_score`` and ``colbert_score``), one text
at a time, within 1e-5: dense, sparse weights, multi-vectors and the three scores; a batch with
padding equal to one at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.errors import InputError
from omniretrieve.models.registry import default_registry
from omniretrieve.multi_vector import SparseEmbedding, lexical_match, maxsim
from tests.builders.bge_m3_reference import flag_colbert, flag_lexical, flag_reference
from tests.builders.tiny_bge_m3 import build_tiny_bge_m3

QUERY = "What is BGE M3?"
TEXTS = [
    "BGE M3 is an embedding model supporting dense retrieval, lexical matching and multi-vector "
    "interaction.",
    "BM25 is a bag-of-words retrieval function that ranks documents by the query terms in them",
    "Le chat mange le poisson",  # another language, another length: padding in the batch
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bge_m3(tmp_path_factory.mktemp("bge-m3") / "looks-like-minilm")


@pytest.fixture(scope="module")
def embedder(checkpoint: Path) -> Embedder:
    return Embedder(checkpoint, dtype="float32")


def test_recognised_by_its_heads_not_its_name(checkpoint: Path, tmp_path: Path) -> None:
    assert default_registry().resolve(checkpoint).family.name == "bge-m3"
    plain = build_tiny_bge_m3(tmp_path / "bge-m3-without-heads", heads=False)
    assert default_registry().resolve(plain).family.name == "sentence-encoder"


def test_three_outputs_equal_the_reference(checkpoint: Path, embedder: Embedder) -> None:
    result = embedder.encode(TEXTS, return_sparse=True, return_multivector=True)
    assert result.sparse is not None and result.multivectors is not None
    kept = 0
    for position, text in enumerate(TEXTS):
        dense, weights, colbert = flag_reference(checkpoint, text)
        np.testing.assert_allclose(result.embeddings[position], dense, atol=1e-5)
        ours = result.sparse[position]
        assert ours.as_dict().keys() == weights.keys()
        kept += len(weights)
        assert list(ours.values) == pytest.approx([weights[int(i)] for i in ours.indices], abs=1e-5)
        vectors = result.multivectors[position]
        assert isinstance(vectors, np.ndarray) and vectors.shape == colbert.shape
        np.testing.assert_allclose(vectors, colbert, atol=1e-5)
    assert kept > 10  # the random head does weigh tokens
    plain = embedder.encode(TEXTS)  # the dense output alone is the same vector
    np.testing.assert_allclose(plain.embeddings, result.embeddings, atol=1e-6)


def test_three_scores_equal_the_reference(checkpoint: Path, embedder: Embedder) -> None:
    query = embedder.encode([QUERY], return_sparse=True, return_multivector=True)
    documents = embedder.encode(TEXTS, return_sparse=True, return_multivector=True)
    assert query.sparse and query.multivectors and documents.sparse and documents.multivectors
    q_dense, q_weights, q_colbert = flag_reference(checkpoint, QUERY)
    for position, text in enumerate(TEXTS):
        dense, weights, colbert = flag_reference(checkpoint, text)
        assert float(query.embeddings[0] @ documents.embeddings[position]) == pytest.approx(
            float(q_dense @ dense), abs=1e-5
        )
        assert lexical_match(query.sparse[0], documents.sparse[position]) == pytest.approx(
            flag_lexical(q_weights, weights), abs=1e-5
        )
        assert maxsim(query.multivectors[0], documents.multivectors[position]) == pytest.approx(
            flag_colbert(q_colbert, colbert), abs=1e-5
        )


def test_a_padded_batch_equals_one_at_a_time(checkpoint: Path) -> None:
    small = Embedder(checkpoint, dtype="float32", token_budget=64, max_batch_size=2)
    together = small.encode(TEXTS, return_sparse=True, return_multivector=True)
    for position, text in enumerate(TEXTS):
        alone = small.encode([text], return_sparse=True, return_multivector=True)
        assert together.sparse and alone.sparse and together.multivectors and alone.multivectors
        np.testing.assert_allclose(together.embeddings[position], alone.embeddings[0], atol=1e-5)
        assert together.sparse[position].as_dict() == pytest.approx(
            alone.sparse[0].as_dict(), abs=1e-5
        )
        np.testing.assert_allclose(
            together.multivectors[position], alone.multivectors[0], atol=1e-5
        )


def test_sparse_tokens_and_json(embedder: Embedder) -> None:
    result = embedder.encode([QUERY], return_sparse=True, return_multivector=True)
    row = result.to_json()["data"][0]
    assert set(row["sparse"]) == {"indices", "values", "tokens"}
    tokenizer = embedder.model.tokenizer
    assert row["sparse"]["tokens"] == tokenizer.convert_ids_to_tokens(row["sparse"]["indices"])
    assert len(row["embeddings"]) == len(tokenizer(QUERY)["input_ids"]) - 1
    assert "sparse" not in embedder.encode([QUERY]).to_json()["data"][0]
    binary = embedder.encode([QUERY], return_multivector=True, embedding_type="ubinary")
    assert binary.multivectors is not None and binary.multivectors[0].dtype == np.uint8


def test_models_without_the_heads_refuse_them(minilm: Embedder) -> None:
    for flag in ("return_sparse", "return_multivector"):
        with pytest.raises(InputError) as raised:
            minilm.encode(["a"], **{flag: True})
        assert raised.value.field == flag


def test_sparse_embedding_scores_by_hand() -> None:
    query = SparseEmbedding.from_dict({3: 0.5, 7: 1.0})
    document = SparseEmbedding.from_dict({7: 2.0, 9: 4.0})
    assert lexical_match(query, document) == pytest.approx(2.0)
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    d = np.array([[0.6, 0.8], [1.0, 0.0]])
    assert maxsim(q, d) == pytest.approx((1.0 + 0.8) / 2)


def test_served_outputs_over_http(checkpoint: Path, embedder: Embedder, server_pool, tmp_path):
    """``serve --model DIR``: /v1/embeddings with ``return_sparse`` / ``return_multivector``
    (Jina's ``embeddings`` shape, in ``embedding_type``), TEI's /embed_sparse, the token
    limit, and a 422 naming the flag for a model without the head."""
    import base64

    from fastapi.testclient import TestClient

    from omniretrieve.server.app import create_app
    from omniretrieve.server.config import Limits, ServerConfig

    config = ServerConfig(
        models=(str(checkpoint), "all-MiniLM-L6-v2"),
        collections_root=tmp_path,
        limits=Limits(max_tokens_per_request=60),
    )
    expected = embedder.encode(TEXTS[:2], return_sparse=True, return_multivector=True)
    assert expected.sparse is not None and expected.multivectors is not None
    with TestClient(create_app(config, pool=server_pool(config))) as client:
        body = {"model": str(checkpoint), "input": TEXTS[:2]}
        response = client.post(
            "/v1/embeddings", json={**body, "return_sparse": True, "return_multivector": True}
        )
        assert response.status_code == 200, response.text
        for position, row in enumerate(response.json()["data"]):
            assert row["sparse"]["indices"] == expected.sparse[position].indices.tolist()
            assert row["sparse"]["values"] == pytest.approx(
                expected.sparse[position].values.tolist(), abs=1e-5
            )
            np.testing.assert_allclose(
                np.array(row["embeddings"]), expected.multivectors[position], atol=1e-5
            )
            np.testing.assert_allclose(row["embedding"], expected.embeddings[position], atol=1e-5)
        plain = client.post("/v1/embeddings", json=body).json()["data"][0]
        assert "sparse" not in plain and "embeddings" not in plain
        packed = client.post(
            "/v1/embeddings",
            json={**body, "return_multivector": True, "embedding_type": "base64"},
        ).json()["data"][1]
        first = np.frombuffer(base64.b64decode(packed["embeddings"][0]), dtype="<f4")
        np.testing.assert_allclose(first, expected.multivectors[1][0], atol=1e-5)
        tei = client.post("/embed_sparse", json={"inputs": TEXTS[:2]})
        assert tei.status_code == 200, tei.text
        pairs = [(p["index"], p["value"]) for p in tei.json()[0]]
        assert [i for i, _ in pairs] == expected.sparse[0].indices.tolist()
        assert [v for _, v in pairs] == pytest.approx(expected.sparse[0].values.tolist(), abs=1e-5)
        too_long = client.post(
            "/v1/embeddings", json={**body, "input": [TEXTS[0]] * 3, "return_multivector": True}
        )
        assert too_long.status_code == 413 and too_long.json()["error"]["field"] == "input"
        for flag in ("return_sparse", "return_multivector"):
            refused = client.post(
                "/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": ["a"], flag: True}
            )
            assert refused.status_code == 422 and refused.json()["error"]["field"] == flag
        no_head = client.post("/embed_sparse", json={"inputs": "a", "model": "all-MiniLM-L6-v2"})
        assert no_head.status_code == 422 and no_head.json()["error"]["field"] == "model"
        operation = client.get("/openapi.json").json()["paths"]["/embed_sparse"]["post"]
        for example in operation["requestBody"]["content"]["application/json"]["examples"].values():
            assert client.post("/embed_sparse", json=example["value"]).status_code == 200
    defaults = ServerConfig(collections_root=tmp_path)  # no model with a sparse head
    with TestClient(create_app(defaults, pool=server_pool(defaults))) as client:
        assert client.post("/embed_sparse", json={"inputs": "a"}).status_code == 404
        assert "/embed_sparse" not in client.get("/openapi.json").json()["paths"]


def test_outputs_on_the_command_line(checkpoint: Path, embedder: Embedder) -> None:
    import json

    from typer.testing import CliRunner

    from omniretrieve.cli import app

    found = CliRunner().invoke(
        app, ["embed", QUERY, "-m", str(checkpoint), "--return-sparse", "--return-multivector"]
    )
    assert found.exit_code == 0, found.output
    row = json.loads(found.stdout)["data"][0]
    expected = embedder.encode([QUERY], return_sparse=True, return_multivector=True)
    assert expected.sparse is not None and expected.multivectors is not None
    assert row["sparse"]["indices"] == expected.sparse[0].indices.tolist()
    np.testing.assert_allclose(np.array(row["embeddings"]), expected.multivectors[0], atol=1e-4)
    refused = CliRunner().invoke(app, ["embed", QUERY, "--return-sparse"])  # MiniLM: no head
    assert refused.exit_code != 0 and "returns no sparse output" in refused.output
    assert "Traceback" not in refused.output
