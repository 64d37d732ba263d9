"""``raw_scores`` (TEI's name): each reranker's score before its last squashing, on request,
beside ``relevance_score``. Checked per family against the checkpoint's own logits computed
here with transformers' classes, and against the documented relation between the two
(relevance = sigmoid(raw), m0: sigmoid(raw - 2.65)); in the library, the CLI and both rerank
APIs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from omniretrieve import Reranker
from tests.builders.tiny_cross_encoder import build_tiny_cross_encoder
from tests.builders.tiny_qwen3_reranker import build_tiny_gemma_reranker, build_tiny_qwen3_reranker

QUERY = "how do cats eat"
DOCUMENTS = ["cats eat fish and dogs chew bones", "stock markets fell on monday", "paris tower"]
QWEN_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query"
    ' and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
QWEN_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN_TASK = "Given a web search query, retrieve relevant passages that answer the query"


def sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value))


def raw_by_index(response) -> list[float]:
    return [r.raw_score for r in sorted(response.results, key=lambda r: r.index)]


def relevance_by_index(response) -> list[float]:
    return [r.relevance_score for r in sorted(response.results, key=lambda r: r.index)]


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("raw-ce"))


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen3_reranker(tmp_path_factory.mktemp("raw-qwen"))


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gemma_reranker(tmp_path_factory.mktemp("raw-gemma"))


def test_cross_encoder_raw_scores_are_its_logits(cross_encoder: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(cross_encoder)
    model = AutoModelForSequenceClassification.from_pretrained(cross_encoder).eval()
    with torch.no_grad():
        logits = [
            model(**tokenizer(QUERY, d, return_tensors="pt")).logits[0, 0].item() for d in DOCUMENTS
        ]
    response = Reranker(cross_encoder).rerank(QUERY, DOCUMENTS, raw_scores=True)
    assert raw_by_index(response) == pytest.approx(logits, abs=1e-5)
    relevance = relevance_by_index(response)
    assert relevance == pytest.approx([sigmoid(x) for x in logits], abs=1e-6)


def test_qwen3_raw_scores_are_the_yes_no_log_odds(qwen: Path) -> None:
    """The card's P(yes) is a softmax over the "no" and "yes" logits: its log-odds are their
    difference, computed here from the card's prompt."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(qwen)
    model = AutoModelForCausalLM.from_pretrained(qwen, dtype=torch.float32).eval()
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    expected = []
    for document in DOCUMENTS:
        body = f"<Instruct>: {QWEN_TASK}\n<Query>: {QUERY}\n<Document>: {document}"
        text = QWEN_PREFIX + body + QWEN_SUFFIX
        ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)])
        with torch.no_grad():
            last = model(input_ids=ids).logits[0, -1]
        expected.append((last[yes] - last[no]).item())
    response = Reranker(qwen, dtype="float32").rerank(QUERY, DOCUMENTS, raw_scores=True)
    assert raw_by_index(response) == pytest.approx(expected, abs=1e-5)
    assert relevance_by_index(response) == pytest.approx([sigmoid(x) for x in expected], abs=1e-6)


def test_gemma_raw_scores_are_the_yes_logit(gemma: Path) -> None:
    """FlagEmbedding's ``normalize=False``: the "Yes" logit itself."""
    reranker = Reranker(gemma, dtype="float32")
    plain = reranker.rerank(QUERY, DOCUMENTS)
    raw = reranker.rerank(QUERY, DOCUMENTS, raw_scores=True)
    assert relevance_by_index(raw) == pytest.approx(relevance_by_index(plain), abs=1e-7)
    assert relevance_by_index(raw) == pytest.approx(
        [sigmoid(x) for x in raw_by_index(raw)], abs=1e-6
    )


def test_m0_raw_scores_are_its_head_before_the_bias(tmp_path: Path) -> None:
    from tests.builders.tiny_m0 import build_tiny_m0

    response = Reranker(build_tiny_m0(tmp_path / "m0"), dtype="float32").rerank(
        QUERY, DOCUMENTS, raw_scores=True
    )
    raw = raw_by_index(response)
    assert relevance_by_index(response) == pytest.approx([sigmoid(x - 2.65) for x in raw], abs=1e-6)


def test_offline_reranker_raw_scores_are_its_logits() -> None:
    response = Reranker().rerank(QUERY, DOCUMENTS, raw_scores=True)
    raw = raw_by_index(response)
    assert relevance_by_index(response) == pytest.approx([sigmoid(x) for x in raw], abs=1e-6)
    assert any(x < 0 for x in raw) or any(x > 1 for x in raw)  # not probabilities


def test_raw_scores_are_left_out_unless_asked(cross_encoder: Path) -> None:
    response = Reranker(cross_encoder).rerank(QUERY, DOCUMENTS)
    assert all(r.raw_score is None for r in response.results)
    assert all("raw_score" not in row for row in response.to_json()["results"])
    asked = Reranker(cross_encoder).rerank(QUERY, DOCUMENTS, raw_scores=True).to_json()
    assert all(isinstance(row["raw_score"], float) for row in asked["results"])


def test_raw_scores_over_both_rerank_apis(cross_encoder: Path, server_pool, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from omniretrieve.server.app import create_app
    from omniretrieve.server.config import ServerConfig

    config = ServerConfig(models=(str(cross_encoder),), collections_root=tmp_path)
    expected = raw_by_index(Reranker(cross_encoder).rerank(QUERY, DOCUMENTS, raw_scores=True))
    with TestClient(create_app(config, pool=server_pool(config))) as client:
        for path in ("/v1/rerank", "/v2/rerank"):
            body = {"model": str(cross_encoder), "query": QUERY, "documents": DOCUMENTS}
            plain = client.post(path, json=body).json()["results"]
            assert all("raw_score" not in row for row in plain)
            response = client.post(path, json={**body, "raw_scores": True})
            assert response.status_code == 200, response.text
            rows = sorted(response.json()["results"], key=lambda r: r["index"])
            assert [r["raw_score"] for r in rows] == pytest.approx(expected, abs=1e-4)
            bad = client.post(path, json={**body, "raw_scores": "yes please"})
            assert bad.status_code == 422 and bad.json()["error"]["field"] == "raw_scores"


def test_raw_scores_on_the_command_line(cross_encoder: Path) -> None:
    from typer.testing import CliRunner

    from omniretrieve.cli import app

    result = CliRunner().invoke(
        app, ["rerank", QUERY, *DOCUMENTS, "-m", str(cross_encoder), "--raw-scores"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    assert all(row["relevance_score"] == pytest.approx(sigmoid(row["raw_score"])) for row in rows)
