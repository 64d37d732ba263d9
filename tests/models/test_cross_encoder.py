"""The cross-encoder family on a tiny random BERT cross-encoder, against a reference computed
here from the bare backbone and the classifier tensors read from the checkpoint file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Reranker
from omniretrieve.models.registry import default_registry
from tests.builders.tiny_cross_encoder import build_tiny_cross_encoder

QUERY = "cats eat fish"
DOCUMENTS = ["the cat eats a fish", "stock market fell", "dogs chew bones", "paris tower"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # a name that suggests another family: the registry must read config.json
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("ce") / "clip-vit-looking-name")


def reference_scores(checkpoint: Path, query: str, documents: list[str], *, swap: bool = False):
    """[CLS] query [SEP] document [SEP] (segments 0 then 1) through BertModel; the pooled
    output through the classifier's weight and bias from model.safetensors; sigmoid."""
    import torch
    from safetensors.torch import load_file
    from transformers import BertModel, BertTokenizerFast

    tokenizer = BertTokenizerFast.from_pretrained(checkpoint)
    backbone = BertModel.from_pretrained(checkpoint).eval()
    tensors = load_file(str(checkpoint / "model.safetensors"))
    weight, bias = tensors["classifier.weight"], tensors["classifier.bias"]
    scores = []
    for document in documents:
        first, second = (document, query) if swap else (query, document)
        a, b = tokenizer.tokenize(first), tokenizer.tokenize(second)
        tokens = ["[CLS]", *a, "[SEP]", *b, "[SEP]"]
        ids = torch.tensor([tokenizer.convert_tokens_to_ids(tokens)])
        segments = torch.tensor([[0] * (len(a) + 2) + [1] * (len(b) + 1)])
        with torch.no_grad():
            pooled = backbone(input_ids=ids, token_type_ids=segments).pooler_output
        scores.append(torch.sigmoid(pooled @ weight.T + bias).item())
    return np.array(scores)


def test_family_is_read_from_the_config(checkpoint: Path) -> None:
    source = default_registry().resolve(checkpoint)
    assert source.family.name == "cross-encoder" and source.family.kind == "reranker"


def test_scores_equal_the_reference(checkpoint: Path) -> None:
    reranker = Reranker(checkpoint, token_budget=24, max_batch_size=2)  # several batches
    response = reranker.rerank(QUERY, DOCUMENTS, return_documents=False)
    ours = np.zeros(len(DOCUMENTS))
    for result in response.results:
        ours[result.index] = result.relevance_score
    expected = reference_scores(checkpoint, QUERY, DOCUMENTS)
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert np.all((ours > 0) & (ours < 1))
    # the pair order matters: the document first gives other scores
    swapped = reference_scores(checkpoint, QUERY, DOCUMENTS, swap=True)
    assert np.abs(swapped - expected).max() > 1e-4
    assert response.total_tokens == sum(
        len(reranker.model.tokenizer(QUERY, d)["input_ids"]) for d in DOCUMENTS
    )


def test_long_documents_are_cut_and_flagged(checkpoint: Path) -> None:
    reranker = Reranker(checkpoint)
    assert reranker.model.max_length == 64  # the tiny position table, below the 512 default
    long_document = " ".join(["fish"] * 200)
    response = reranker.rerank(QUERY, [long_document, "cats"], return_documents=False)
    flags = {r.index: r.truncated for r in response.results}
    assert flags == {0: True, 1: False}
    # 64 positions = [CLS] + 3 query tokens + [SEP] + 58 document tokens + [SEP]
    expected = reference_scores(checkpoint, QUERY, [" ".join(["fish"] * 58)])[0]
    assert next(r for r in response.results if r.index == 0).relevance_score == pytest.approx(
        expected, abs=1e-5
    )


def test_bfloat16_runs_close_to_float32(checkpoint: Path) -> None:
    full = Reranker(checkpoint).rerank(QUERY, DOCUMENTS, return_documents=False)
    half = Reranker(checkpoint, dtype="bfloat16").rerank(QUERY, DOCUMENTS, return_documents=False)
    by_index = {r.index: r.relevance_score for r in full.results}
    for result in half.results:
        # bf16 keeps 8 bits of mantissa; this random model has large weights
        assert result.relevance_score == pytest.approx(by_index[result.index], abs=0.06)
