"""The decoder-embedder family (BGE-Code-v1's recipe) on a tiny random Qwen2Model, against a
reference computed here: the bare backbone on one unpadded hand-built prompt, the hidden state
at its last token, L2-normalised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.models.decoder_embedder import CODE_INSTRUCTIONS, DEFAULT_TASK
from omniretrieve.models.registry import default_registry
from tests.builders.tiny_qwen2 import build_tiny_qwen2_embedder

QUERIES = ["how to sort a list", "add two numbers"]
CODE = ["def sort_list(items): return sorted(items)", "def add(a, b): return a + b", "SELECT 1"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # a MiniLM-sounding name: the family comes from config.json's architectures
    return build_tiny_qwen2_embedder(tmp_path_factory.mktemp("dec") / "all-MiniLM-L6-v2-copy")


def reference(checkpoint: Path, texts: list[str], *, position: int = -1) -> np.ndarray:
    import torch
    from transformers import AutoTokenizer, Qwen2Model

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    backbone = Qwen2Model.from_pretrained(checkpoint).eval()
    rows = []
    for text in texts:
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        with torch.no_grad():
            hidden = backbone(input_ids=ids).last_hidden_state[0, position]
        rows.append((hidden / hidden.norm()).numpy())
    return np.stack(rows)


def prompt(instruction: str, query: str) -> str:
    return f"<instruct>{instruction}\n<query>{query}"


def test_family_from_architectures(checkpoint: Path) -> None:
    source = default_registry().resolve(checkpoint)
    assert source.family.name == "decoder-embedder"
    assert Embedder(checkpoint).dimension == 32


def test_queries_carry_the_instruction_documents_none(checkpoint: Path) -> None:
    embedder = Embedder(checkpoint, token_budget=40, max_batch_size=2)  # padded batches
    queries = embedder.encode(QUERIES, task="retrieval.query").embeddings
    default = CODE_INSTRUCTIONS[DEFAULT_TASK]
    expected = reference(checkpoint, [prompt(default, q) for q in QUERIES])
    np.testing.assert_allclose(queries, expected, atol=1e-4)
    documents = embedder.encode(CODE, task="retrieval.passage").embeddings
    np.testing.assert_allclose(documents, reference(checkpoint, CODE), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(documents, axis=1), 1.0, atol=1e-5)
    # what a wrong recipe would give is measurably different
    assert np.abs(reference(checkpoint, QUERIES) - queries).max() > 1e-3  # no instruction
    swapped = [f"<query>{q}\n<instruct>{default}" for q in QUERIES]
    assert np.abs(reference(checkpoint, swapped) - queries).max() > 1e-3  # order
    first_token = reference(checkpoint, CODE, position=0)
    assert np.abs(first_token - documents).max() > 1e-3  # pooling position


CARD_INSTRUCTIONS = {  # BGE-Code-v1's card, "Instructions for Evaluation" (FlagEmbedding)
    "CosQA": "Given a web search query, retrieve relevant code that can help answer the query.",
    "Text2SQL": "Given a question in text, retrieve SQL queries that are appropriate responses "
    "to the question.",
    "Apps": "Given a code contest problem description, retrieve relevant code that can help "
    "solve the problem.",
    "CSN": "Given a piece of code, retrieve the document string that summarizes the code.",
    "CodeTrans-Contest": "Given a piece of Python code, retrieve C++ code that is semantically "
    "equivalent to the input code.",
    "MBPP": "Given a textual explanation of code functionality, retrieve the corresponding code "
    "implementation.",
    "SWE-bench-Lite": "Given a code snippet containing a bug and a natural language description "
    "of the bug or error, retrieve code snippets that demonstrate solutions or fixes for similar "
    "bugs or errors (the desired documents).",
}


def test_named_tasks_send_the_model_cards_exact_strings() -> None:
    from omniretrieve.models.decoder_embedder import resolve_instruction

    card_names = {
        "Apps", "CosQA", "Text2SQL", "CSN", "CSN-CCR", "CodeTrans-DL", "CodeTrans-Contest",
        "StackOverFlow-QA", "CodeFeedBack-ST", "CodeFeedBack-MT", "HumanEval", "MBPP",
        "DS-1000", "ODEX", "RepoEval", "SWE-bench-Lite",
    }  # fmt: skip
    assert set(CODE_INSTRUCTIONS) == card_names
    for name, text in CARD_INSTRUCTIONS.items():
        assert CODE_INSTRUCTIONS[name] == text
        assert resolve_instruction(name) == text
        assert resolve_instruction(name.lower()) == text  # names match in any case
    assert resolve_instruction("HummanEval") == CODE_INSTRUCTIONS["HumanEval"]  # card's spelling
    assert resolve_instruction("Find the function.") == "Find the function."


def test_named_and_custom_instructions(checkpoint: Path) -> None:
    embedder = Embedder(checkpoint)
    sql = embedder.encode(QUERIES[:1], instruction="Text2SQL").embeddings
    expected = reference(checkpoint, [prompt(CARD_INSTRUCTIONS["Text2SQL"], QUERIES[0])])
    np.testing.assert_allclose(sql, expected, atol=1e-4)
    custom = embedder.encode(QUERIES[:1], instruction="Find the function.").embeddings
    expected = reference(checkpoint, [prompt("Find the function.", QUERIES[0])])
    np.testing.assert_allclose(custom, expected, atol=1e-4)


def test_left_padded_tokenizer_config_gives_the_same_vectors(tmp_path: Path) -> None:
    left = build_tiny_qwen2_embedder(tmp_path / "left", padding_side="left")
    vectors = Embedder(left, max_batch_size=3).encode(CODE).embeddings
    np.testing.assert_allclose(vectors, reference(left, CODE), atol=1e-4)


def test_bfloat16_is_close(checkpoint: Path) -> None:
    full = Embedder(checkpoint).encode(CODE).embeddings
    half = Embedder(checkpoint, dtype="bfloat16").encode(CODE).embeddings
    assert np.min(np.sum(full * half, axis=1)) > 0.98
