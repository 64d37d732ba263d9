"""The Qwen3-Reranker recipe on a tiny random checkpoint in the real layout, against a
reference written here from the model card's code (format_instruction, process_inputs,
compute_logits), one pair at a time, within 1e-5."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from omniretrieve import Embedder, Reranker
from omniretrieve.errors import InputError, OmniRetrieveError
from tests.builders.tiny_qwen3_reranker import build_tiny_qwen3_reranker

CARD_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query"
    ' and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
CARD_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
CARD_TASK = "Given a web search query, retrieve relevant passages that answer the query"
QUERY = "how do cats eat"
DOCUMENTS = [
    "cats eat fish and dogs chew bones",
    "def sort_list(items): return sorted(items)",
    "SELECT name FROM users WHERE age > 30 " * 3,
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen3_reranker(tmp_path_factory.mktemp("qwen3-reranker"))


def card_scores(path: Path, query: str, documents: list[str], task: str, max_length: int):
    """The model card's computation, pair by pair (no padding at all)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    prefix = tokenizer.encode(CARD_PREFIX, add_special_tokens=False)
    suffix = tokenizer.encode(CARD_SUFFIX, add_special_tokens=False)
    scores = []
    for document in documents:
        pair = f"<Instruct>: {task}\n<Query>: {query}\n<Document>: {document}"
        body = tokenizer(
            [pair],
            padding=False,
            truncation="longest_first",
            return_attention_mask=False,
            max_length=max_length - len(prefix) - len(suffix),
        )["input_ids"][0]
        ids = torch.tensor([prefix + body + suffix])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[:, -1, :]
        both = torch.stack([logits[:, no], logits[:, yes]], dim=1)
        scores.append(torch.nn.functional.log_softmax(both, dim=1)[:, 1].exp().item())
    return scores


def by_index(response) -> list[float]:
    return [r.relevance_score for r in sorted(response.results, key=lambda r: r.index)]


def test_default_instruction_matches_the_card(checkpoint: Path) -> None:
    reranker = Reranker(checkpoint, dtype="float32")
    assert reranker.model.family == "llm-reranker"
    ours = by_index(reranker.rerank(QUERY, DOCUMENTS, return_documents=False))
    expected = card_scores(checkpoint, QUERY, DOCUMENTS, CARD_TASK, 8192)
    assert ours == pytest.approx(expected, abs=1e-5)
    assert len(set(round(s, 6) for s in ours)) == len(ours)  # the scores do differ


def test_a_custom_instruction_matches_the_card(checkpoint: Path) -> None:
    task = "Given a code question, retrieve code that answers it"
    reranker = Reranker(checkpoint, dtype="float32")
    ours = by_index(reranker.rerank(QUERY, DOCUMENTS, return_documents=False, instruction=task))
    assert ours == pytest.approx(card_scores(checkpoint, QUERY, DOCUMENTS, task, 8192), abs=1e-5)
    default = by_index(reranker.rerank(QUERY, DOCUMENTS, return_documents=False))
    assert ours != pytest.approx(default, abs=1e-6)


def test_a_long_document_is_cut_at_its_end(tmp_path: Path) -> None:
    """A checkpoint of 256 positions: the body is cut to what prefix and suffix leave."""
    small = build_tiny_qwen3_reranker(tmp_path / "short", max_positions=256)
    reranker = Reranker(small, dtype="float32")
    long_document = "cats eat fish and dogs chew bones " * 40
    response = reranker.rerank(QUERY, [long_document, DOCUMENTS[0]], return_documents=False)
    flags = {r.index: r.truncated for r in response.results}
    assert flags == {0: True, 1: False}
    expected = card_scores(small, QUERY, [long_document, DOCUMENTS[0]], CARD_TASK, 256)
    assert by_index(response) == pytest.approx(expected, abs=1e-5)


def test_batches_with_padding_equal_one_at_a_time(checkpoint: Path) -> None:
    reranker = Reranker(checkpoint, dtype="float32")
    together = by_index(reranker.rerank(QUERY, DOCUMENTS, return_documents=False))
    alone = [by_index(reranker.rerank(QUERY, [d], return_documents=False))[0] for d in DOCUMENTS]
    assert together == pytest.approx(alone, abs=1e-5)


def test_recognised_by_its_files_and_refused_as_an_embedder(checkpoint: Path, tmp_path) -> None:
    import shutil

    with pytest.raises(OmniRetrieveError, match="is a reranker \\(llm-reranker\\)"):
        Embedder(checkpoint)
    # the same architecture with sentence-transformers files is an embedding checkpoint
    embedding = tmp_path / "embedding"
    shutil.copytree(checkpoint, embedding)
    (embedding / "modules.json").write_text("[]")
    with pytest.raises(OmniRetrieveError, match="Qwen3ForCausalLM"):
        Reranker(embedding)


def test_rerankers_without_instructions_refuse_one() -> None:
    reranker = Reranker()
    with pytest.raises(InputError, match="takes no instruction") as raised:
        reranker.rerank("q", ["a"], instruction="judge carefully")
    assert raised.value.field == "instruction"
    assert reranker.rerank("q", ["a"], instruction="").results  # empty: nothing asked


def test_served_with_instructions_over_http(checkpoint: Path, server_pool, tmp_path) -> None:
    """``serve --model DIR``: /v1/rerank and /v2/rerank carry ``instruction`` to the model
    (scores as the library's), and a reranker that takes none answers 422 naming it."""
    from fastapi.testclient import TestClient

    from omniretrieve.server.app import create_app
    from omniretrieve.server.config import ServerConfig

    config = ServerConfig(
        models=(str(checkpoint), "omniretrieve-hybrid-reranker"), collections_root=tmp_path
    )
    task = "Given a code question, retrieve code that answers it"
    expected = by_index(
        Reranker(checkpoint, dtype="float32").rerank(
            QUERY, DOCUMENTS, return_documents=False, instruction=task
        )
    )
    with TestClient(create_app(config, pool=server_pool(config))) as client:
        for path in ("/v1/rerank", "/v2/rerank"):
            body = {"model": str(checkpoint), "query": QUERY, "documents": DOCUMENTS}
            response = client.post(path, json={**body, "instruction": task})
            assert response.status_code == 200, response.text
            results = sorted(response.json()["results"], key=lambda r: r["index"])
            assert [r["relevance_score"] for r in results] == pytest.approx(expected, abs=1e-4)
        refused = client.post(
            "/v1/rerank",
            json={"model": "omniretrieve-hybrid-reranker", "query": QUERY,
                  "documents": DOCUMENTS, "instruction": task},
        )  # fmt: skip
        assert refused.status_code == 422
        assert refused.json()["error"]["field"] == "instruction"


def test_rerank_on_the_command_line_with_an_instruction(checkpoint: Path) -> None:
    import json

    from typer.testing import CliRunner

    from omniretrieve.cli import app

    task = "Given a code question, retrieve code that answers it"
    found = CliRunner().invoke(
        app,
        ["rerank", QUERY, *DOCUMENTS, "-m", str(checkpoint), "--dtype", "float32",
         "--instruction", task, "--no-documents"],
    )  # fmt: skip
    assert found.exit_code == 0, found.output
    scores = sorted(json.loads(found.stdout)["results"], key=lambda r: r["index"])
    expected = card_scores(checkpoint, QUERY, DOCUMENTS, task, 8192)
    assert [r["relevance_score"] for r in scores] == pytest.approx(expected, abs=1e-5)
    refused = CliRunner().invoke(app, ["rerank", QUERY, "a", "--instruction", task])
    assert refused.exit_code != 0 and "takes no instruction" in refused.output


def test_a_collection_search_sends_its_instruction_to_the_reranker(checkpoint, tmp_path) -> None:
    """The search's instruction (here per model: the embedder takes none) reaches the LLM
    reranker; every hit's rerank score is the library's for that document."""
    from omniretrieve.index.collection import Collection

    task = "Given a code question, retrieve code that answers it"
    reranker = Reranker(checkpoint, dtype="float32")
    collection = Collection.create("llm", root=tmp_path, rerankers={str(checkpoint): reranker})
    try:
        collection.upsert([{"id": str(i), "text": t} for i, t in enumerate(DOCUMENTS)])
        for instruction in (task, None):
            hits = collection.search(
                QUERY,
                top_k=3,
                rerank=str(checkpoint),
                instruction={str(checkpoint): task} if instruction else None,
            )
            for hit in hits:
                expected = reranker.rerank(
                    QUERY, [hit.text], return_documents=False, instruction=instruction
                )
                assert hit.scores["rerank"] == pytest.approx(
                    expected.results[0].relevance_score, abs=1e-5
                )
    finally:
        collection.close()


BAAI_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the "
    "query by providing a prediction of either 'Yes' or 'No'."
)


def card_gemma_scores(path: Path, pairs: list[list[str]], prompt: str, max_length: int = 1024):
    """bge-reranker-v2-gemma's model card: get_inputs, then the 'Yes' logit (here through the
    sigmoid, FlagEmbedding's normalize=True); one padded batch, as the card runs it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    yes_loc = tokenizer("Yes", add_special_tokens=False)["input_ids"][0]
    prompt_inputs = tokenizer(prompt, return_tensors=None, add_special_tokens=False)["input_ids"]
    sep_inputs = tokenizer("\n", return_tensors=None, add_special_tokens=False)["input_ids"]
    inputs = []
    for query, passage in pairs:
        query_inputs = tokenizer(
            f"A: {query}", add_special_tokens=False, max_length=max_length * 3 // 4,
            truncation=True,
        )  # fmt: skip
        passage_inputs = tokenizer(
            f"B: {passage}", add_special_tokens=False, max_length=max_length, truncation=True
        )
        # the card's prepare_for_model(first, second, truncation="only_second", max_length):
        # transformers 5 has no prepare_for_model; "only_second" cuts the second at its end
        first = [tokenizer.bos_token_id] + query_inputs["input_ids"]
        second = sep_inputs + passage_inputs["input_ids"]
        item = {"input_ids": first + second[: max_length - len(first)]}
        item["input_ids"] = item["input_ids"] + sep_inputs + prompt_inputs
        item["attention_mask"] = [1] * len(item["input_ids"])
        inputs.append(item)
    batch = tokenizer.pad(
        inputs, padding=True, max_length=max_length + len(sep_inputs) + len(prompt_inputs),
        pad_to_multiple_of=8, return_tensors="pt",
    )  # fmt: skip
    with torch.no_grad():
        logits = model(**batch, return_dict=True).logits[:, -1, yes_loc].view(-1).float()
    return torch.sigmoid(logits).tolist()


@pytest.fixture(scope="module")
def gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.builders.tiny_qwen3_reranker import build_tiny_gemma_reranker

    return build_tiny_gemma_reranker(tmp_path_factory.mktemp("gemma-reranker"))


def test_the_baai_gemma_recipe_matches_its_card(gemma: Path) -> None:
    reranker = Reranker(gemma, dtype="float32")
    assert reranker.model.family == "llm-reranker"
    ours = by_index(reranker.rerank(QUERY, DOCUMENTS, return_documents=False))
    pairs = [[QUERY, d] for d in DOCUMENTS]
    assert ours == pytest.approx(card_gemma_scores(gemma, pairs, BAAI_PROMPT), abs=1e-5)
    task = "Does passage B answer query A? Say 'Yes' or 'No'."
    custom = by_index(reranker.rerank(QUERY, DOCUMENTS, return_documents=False, instruction=task))
    assert custom == pytest.approx(card_gemma_scores(gemma, pairs, task), abs=1e-5)
    alone = [by_index(reranker.rerank(QUERY, [d], return_documents=False))[0] for d in DOCUMENTS]
    assert alone == pytest.approx(ours, abs=1e-5)


def test_the_gemma_passage_is_cut_first(gemma: Path) -> None:
    long_document = "cats eat fish and dogs chew bones " * 200
    reranker = Reranker(gemma, dtype="float32")
    response = reranker.rerank(QUERY, [long_document, DOCUMENTS[0]], return_documents=False)
    assert {r.index: r.truncated for r in response.results} == {0: True, 1: False}
    expected = card_gemma_scores(gemma, [[QUERY, long_document], [QUERY, DOCUMENTS[0]]],
                                 BAAI_PROMPT, max_length=512)  # fmt: skip
    assert by_index(response) == pytest.approx(expected, abs=1e-5)


def test_only_the_last_position_gets_logits(checkpoint: Path) -> None:
    """The answer is read at the last position: logits over the vocabulary at every position
    (batch x length x vocabulary; for Qwen3-Reranker's 151,669 tokens, gigabytes per batch of
    long documents) are never computed."""
    reranker = Reranker(checkpoint, dtype="float32")
    shapes: list[tuple[int, ...]] = []
    handle = reranker.model.model.register_forward_hook(
        lambda _module, _args, output: shapes.append(tuple(output.logits.shape))
    )
    try:
        reranker.rerank(QUERY, DOCUMENTS, return_documents=False)
    finally:
        handle.remove()
    assert shapes and all(shape[1] == 1 for shape in shapes)
