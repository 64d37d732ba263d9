"""The sentence-encoder family on a tiny random BERT loaded from disk like a real checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.errors import InputError
from tests.builders.tiny_bert import build_tiny_bert


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir: Path) -> Embedder:
    return Embedder(tiny_bert_dir)


def test_shapes_and_normalisation(tiny: Embedder) -> None:
    result = tiny.encode(["the cat", "dogs eat bones", "a"])
    assert isinstance(result.embeddings, np.ndarray)
    assert result.embeddings.shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)
    assert tiny.model_id == "qwen2-vl-reranker-looking-name"
    assert tiny.dimension == 32 and tiny.max_length == 16


def test_order_is_restored_and_batching_does_not_change_vectors(tiny_bert_dir: Path) -> None:
    texts = ["cat " * n for n in (1, 9, 3, 12, 2, 7)]
    small_batches = Embedder(tiny_bert_dir, token_budget=16, max_batch_size=2)
    one_batch = Embedder(tiny_bert_dir, token_budget=10_000)
    a = small_batches.encode_texts(texts)
    b = one_batch.encode_texts(texts)
    np.testing.assert_allclose(a, b, atol=1e-5)
    singles = np.stack([one_batch.encode_texts([t])[0] for t in texts])
    np.testing.assert_allclose(a, singles, atol=1e-5)


def test_truncation_is_flagged_never_crashes(tiny: Embedder) -> None:
    result = tiny.encode(["cat dog", "cat " * 100, "x" * 100_000])
    assert result.truncated[0] is False
    assert result.truncated[1] is True
    assert result.token_counts[1] == 16
    # a single 100k-character "word" becomes [UNK]: nothing after it is lost
    assert result.truncated[2] is False


def test_text_exactly_at_the_limit_is_not_truncated(tiny: Embedder) -> None:
    text = " ".join(["cat"] * 14)  # 14 tokens + [CLS] + [SEP] = 16
    result = tiny.encode([text])
    assert result.token_counts == [16] and result.truncated == [False]


def test_raw_vectors_without_normalisation(tiny: Embedder) -> None:
    raw = tiny.encode(["the cat"], normalize=False).embeddings
    assert abs(float(np.linalg.norm(raw)) - 1.0) > 1e-3


@pytest.mark.parametrize("pooling", ["cls", "max", "last", "mean"])
def test_pooling_modes_are_read_from_the_checkpoint(tmp_path: Path, pooling: str) -> None:
    path = build_tiny_bert(tmp_path / pooling, pooling=pooling)
    embedder = Embedder(path)
    assert embedder.model.layout.pooling == pooling  # type: ignore[attr-defined]
    assert embedder.encode_texts(["the cat"]).shape == (1, 32)


def test_prompts_follow_the_task(tmp_path: Path) -> None:
    path = build_tiny_bert(tmp_path / "p", prompts={"query": "query ", "document": "passage "})
    embedder = Embedder(path)
    query = embedder.encode_texts(["cat"], task="retrieval.query")
    passage = embedder.encode_texts(["cat"], task="retrieval.passage")
    plain = embedder.encode_texts(["cat"])
    manual = embedder.encode_texts(["query cat"])
    assert not np.allclose(query, passage)
    np.testing.assert_allclose(query, manual, atol=1e-6)
    np.testing.assert_allclose(
        embedder.encode_texts(["cat"], instruction="query "), manual, atol=1e-6
    )
    assert not np.allclose(plain, query)


def test_bad_requests(tiny: Embedder) -> None:
    with pytest.raises(InputError, match="empty list"):
        tiny.encode([])
    with pytest.raises(InputError, match="empty text"):
        tiny.encode(["ok", ""])
    with pytest.raises(InputError, match="task must be one of"):
        tiny.encode(["x"], task="summarise")
    with pytest.raises(InputError, match="between 1 and the model's dimension 32"):
        tiny.encode(["x"], dimensions=64)
    with pytest.raises(InputError, match="takes text only"):
        tiny.encode([{"image": "aGk="}])
    with pytest.raises(InputError, match="normalize"):
        tiny.encode(["x"], embedding_type="int8", normalize=False)
    with pytest.raises(InputError, match="dtype"):
        Embedder("all-MiniLM-L6-v2", dtype="float8")


def test_output_types_through_the_embedder(tiny: Embedder) -> None:
    binary = tiny.encode(["cat"], embedding_type="ubinary")
    assert isinstance(binary.embeddings, np.ndarray) and binary.embeddings.shape == (1, 4)
    b64 = tiny.encode(["cat"], embedding_type="base64", dimensions=8)
    assert isinstance(b64.embeddings, list) and len(b64.embeddings[0]) == 44  # 32 bytes
    payload = tiny.encode(["cat"], embedding_type="int8").to_json()
    assert payload["data"][0]["truncated"] is False
    assert payload["usage"]["total_tokens"] == 3


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_a_checkpoint_saved_by_sentence_transformers_6_loads_with_its_settings(
    tmp_path: Path, pooling: str
) -> None:
    """sentence-transformers 6 writes its modules under new names, the pooling as one
    ``pooling_mode`` and the maximum length into the tokenizer's config (what ``finetune``
    writes too): the same vectors as sentence-transformers', the same limit."""
    from sentence_transformers import SentenceTransformer

    source = build_tiny_bert(tmp_path / "old", pooling=pooling, max_seq_length=12)
    model = SentenceTransformer(str(source), device="cpu", local_files_only=True)
    model.save(str(tmp_path / "new"), create_model_card=False)
    saved = (tmp_path / "new" / "modules.json").read_text()
    assert "sentence_transformers.models.Transformer" not in saved  # the new layout
    texts = ["the cat eats fish", "stock market fell", "a dog"]
    ours = Embedder(tmp_path / "new", dtype="float32")
    assert ours.max_length == 12
    np.testing.assert_allclose(
        ours.encode_texts(texts), model.encode(texts, normalize_embeddings=True), atol=1e-5
    )


def test_loading_a_model_leaves_autograd_as_it_was(tiny_bert_dir: Path) -> None:
    """Loading once switched gradients off for the whole thread (global state): a model
    trained later in the same process (``finetune`` mines with the base first) got none."""
    import torch

    Embedder(tiny_bert_dir, dtype="float32").encode_texts(["the cat"])
    assert torch.is_grad_enabled()
