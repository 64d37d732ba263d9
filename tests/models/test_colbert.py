"""ColBERTv2 on a tiny random checkpoint in its real layout, against a reference written here
from stanford-futuredata/ColBERT's ``QueryTokenizer.tensorize``, ``DocTokenizer.tensorize``,
``ColBERT.query`` / ``ColBERT.doc`` (``keep_dims=False``) and ``colbert_score``, one text at a
time, within 1e-5; a padded batch equal to one at a time."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest
import torch

from omniretrieve import Embedder
from omniretrieve.models.registry import default_registry
from omniretrieve.multi_vector import maxsim
from tests.builders.tiny_colbert import SETTINGS, build_tiny_colbert

QUERIES = ["cats eat fish", "the stock market fell, and rose!"]
DOCUMENTS = [
    "the cat eats a fish.",
    "stock market fell; the dogs chew bones, and paris tower rose",
    "a " * 40 + "heart attack",  # longer than doc_maxlen: cut
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_colbert(tmp_path_factory.mktemp("colbert") / "minilm-looking")


def colbert_reference(path: Path, text: str, *, query: bool) -> np.ndarray:
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, BertConfig, BertModel

    tok = AutoTokenizer.from_pretrained(path)
    tensors = load_file(str(path / "model.safetensors"))
    bert = BertModel(BertConfig.from_pretrained(path))
    bert.load_state_dict(
        {k[len("bert.") :]: v for k, v in tensors.items() if k.startswith("bert.")}
    )
    bert.eval()
    linear = tensors["linear.weight"]
    batch_text = [". " + text]
    if query:
        obj = tok(batch_text, padding="max_length", truncation=True, return_tensors="pt",
                  max_length=SETTINGS["query_maxlen"])  # fmt: skip
        ids, mask = obj["input_ids"], obj["attention_mask"]
        ids[:, 1] = tok.convert_tokens_to_ids(SETTINGS["query_token_id"])
        ids[ids == tok.pad_token_id] = tok.mask_token_id
        skiplist: dict = {}
    else:
        obj = tok(batch_text, padding="longest", truncation="longest_first", return_tensors="pt",
                  max_length=SETTINGS["doc_maxlen"])  # fmt: skip
        ids, mask = obj["input_ids"], obj["attention_mask"]
        ids[:, 1] = tok.convert_tokens_to_ids(SETTINGS["doc_token_id"])
        skiplist = {
            w: True
            for symbol in string.punctuation
            for w in [symbol, tok.encode(symbol, add_special_tokens=False)[0]]
        }
    with torch.no_grad():
        states = bert(ids, attention_mask=mask)[0] @ linear.T
        keep = [[(x not in skiplist) and (x != tok.pad_token_id) for x in d] for d in ids.tolist()]
        keep_tensor = torch.tensor(keep).unsqueeze(2).float()
        vectors = torch.nn.functional.normalize(states * keep_tensor, p=2, dim=2)
    if query:
        return vectors[0].numpy()
    return vectors[0][keep_tensor[0, :, 0].bool()].numpy()


def colbert_score(query: np.ndarray, document: np.ndarray) -> float:
    scores = torch.from_numpy(document) @ torch.from_numpy(query).T  # (doc tokens, query)
    return float(scores.max(0).values.sum())


def test_recognised_by_its_files(checkpoint: Path) -> None:
    assert default_registry().resolve(checkpoint).family.name == "colbert"


def test_queries_and_documents_equal_the_reference(checkpoint: Path) -> None:
    embedder = Embedder(checkpoint, dtype="float32", token_budget=40, max_batch_size=2)
    queries = embedder.encode(QUERIES, task="retrieval.query", return_multivector=True)
    documents = embedder.encode(DOCUMENTS, task="retrieval.passage", return_multivector=True)
    assert queries.multivectors is not None and documents.multivectors is not None
    for ours, text in zip(queries.multivectors, QUERIES, strict=True):
        expected = colbert_reference(checkpoint, text, query=True)
        assert isinstance(ours, np.ndarray) and ours.shape == (SETTINGS["query_maxlen"], 8)
        np.testing.assert_allclose(ours, expected, atol=1e-5)
    for ours, text in zip(documents.multivectors, DOCUMENTS, strict=True):
        expected = colbert_reference(checkpoint, text, query=False)
        assert isinstance(ours, np.ndarray) and ours.shape == expected.shape
        np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert documents.truncated == [False, False, True]
    # punctuation is dropped from documents: fewer vectors than tokens
    assert len(documents.multivectors[1]) < documents.token_counts[1]
    for q, text in zip(queries.multivectors, QUERIES, strict=True):
        q_ref = colbert_reference(checkpoint, text, query=True)
        for d, doc in zip(documents.multivectors, DOCUMENTS, strict=True):
            d_ref = colbert_reference(checkpoint, doc, query=False)
            assert maxsim(q, d, "sum") == pytest.approx(colbert_score(q_ref, d_ref), abs=1e-4)


def test_settings_at_the_top_level_of_the_metadata(tmp_path: Path) -> None:
    flat = build_tiny_colbert(tmp_path / "flat", nested=False)
    embedder = Embedder(flat, dtype="float32")
    result = embedder.encode(["cats"], task="retrieval.query", return_multivector=True)
    assert result.multivectors is not None and len(result.multivectors[0]) == 12
    assert embedder.model.multivector_reduce == "sum"
