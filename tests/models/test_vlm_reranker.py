"""jina-reranker-m0's family on a tiny random checkpoint of its architecture, against a
reference computed here: the prompt built by hand, the bare Qwen2-VL backbone (transformers'
own class) on one unpadded sequence, the score head's tensors read from model.safetensors."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Reranker
from omniretrieve.models.registry import default_registry
from tests.builders.tiny_clip import png_bytes
from tests.builders.tiny_m0 import build_tiny_m0

QUERY = "how to sort a list"
TEXTS = ["def sort_list(items): return sorted(items)", "cats eat fish", "SELECT name FROM users"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # a cross-encoder-sounding name: the family comes from config.json
    return build_tiny_m0(tmp_path_factory.mktemp("m0") / "ms-marco-MiniLM-L-6-v2")


@pytest.fixture(scope="module")
def reranker(checkpoint: Path) -> Reranker:
    return Reranker(checkpoint, token_budget=256, max_batch_size=2)


def image_b64(color: tuple[int, int, int], size: tuple[int, int] = (64, 56)) -> str:
    return base64.b64encode(png_bytes(color, size)).decode()


def reference_score(
    checkpoint: Path,
    document: str,
    query: str,
    images: list[bytes] = (),
    *,
    score_token: int = 100,
    bias: float = 2.65,
    query_first: bool = False,
) -> float:
    import io

    import torch
    from PIL import Image
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, Qwen2VLImageProcessor, Qwen2VLModel

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    processor = Qwen2VLImageProcessor.from_pretrained(checkpoint)
    backbone = Qwen2VLModel.from_pretrained(checkpoint).eval()
    tensors = load_file(str(checkpoint / "model.safetensors"))
    text = (
        f"**Query**:\n{query}\n**Document**:\n{document}"
        if query_first
        else f"**Document**:\n{document}\n**Query**:\n{query}"
    )
    arguments = {}
    if images:
        pil = [Image.open(io.BytesIO(data)).convert("RGB") for data in images]
        size = {"shortest_edge": 3136, "longest_edge": 602112}  # min and max pixels
        features = processor(images=pil, size=size, return_tensors="pt")
        for grid in features["image_grid_thw"]:
            count = int(grid.prod()) // 4
            text = text.replace("<|image_pad|>", "<|placeholder|>" * count, 1)
        text = text.replace("<|placeholder|>", "<|image_pad|>")
        arguments = {
            "pixel_values": features["pixel_values"],
            "image_grid_thw": features["image_grid_thw"],
        }
    ids = tokenizer(text)["input_ids"] + [score_token]
    pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    input_ids = torch.tensor([ids])
    with torch.no_grad():
        hidden = backbone(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            mm_token_type_ids=(input_ids == pad).int(),
            **arguments,
        ).last_hidden_state[0, -1]
    first = torch.relu(tensors["score.0.weight"] @ hidden + tensors["score.0.bias"])
    logit = tensors["score.2.weight"] @ first + tensors["score.2.bias"]
    return torch.sigmoid(logit - bias).item()


def scores_of(response) -> dict[int, float]:
    return {r.index: r.relevance_score for r in response.results}


def test_family_from_architectures(checkpoint: Path) -> None:
    source = default_registry().resolve(checkpoint)
    assert source.family.name == "vlm-reranker" and "image" in source.family.modalities


def test_text_pairs_equal_the_reference(checkpoint: Path, reranker: Reranker) -> None:
    ours = scores_of(reranker.rerank(QUERY, TEXTS, return_documents=False))
    expected = [reference_score(checkpoint, t, QUERY) for t in TEXTS]
    np.testing.assert_allclose([ours[i] for i in range(3)], expected, atol=1e-4)
    assert np.ptp(expected) > 1e-3  # the tiny model tells the pairs apart
    # what a wrong recipe would give differs
    wrong = {
        "query first": reference_score(checkpoint, TEXTS[0], QUERY, query_first=True),
        "score token": reference_score(checkpoint, TEXTS[0], QUERY, score_token=101),
        "no bias": reference_score(checkpoint, TEXTS[0], QUERY, bias=0.0),
    }
    for name, value in wrong.items():
        assert abs(value - ours[0]) > 1e-4, name


def test_mixed_request_text_image_and_mixed_documents(checkpoint: Path, reranker: Reranker) -> None:
    red, green = png_bytes((200, 30, 30), (64, 56)), png_bytes((30, 200, 30), (90, 60))
    documents = [
        {"text": TEXTS[0]},
        {"image": base64.b64encode(red).decode()},
        {"text": "a green page", "image": base64.b64encode(green).decode()},
        TEXTS[1],
    ]
    ours = scores_of(reranker.rerank(QUERY, documents, return_documents=False))
    assert sorted(ours) == [0, 1, 2, 3]
    placeholder = "<|vision_start|><|image_pad|><|vision_end|>"
    expected = [
        reference_score(checkpoint, TEXTS[0], QUERY),
        reference_score(checkpoint, placeholder, QUERY, [red]),
        reference_score(checkpoint, f"{placeholder}\na green page", QUERY, [green]),
        reference_score(checkpoint, TEXTS[1], QUERY),
    ]
    np.testing.assert_allclose([ours[i] for i in range(4)], expected, atol=1e-4)


def test_image_query_and_image_to_image(checkpoint: Path, reranker: Reranker) -> None:
    red, blue = png_bytes((200, 30, 30), (64, 56)), png_bytes((30, 30, 200), (56, 64))
    placeholder = "<|vision_start|><|image_pad|><|vision_end|>"
    query = {"image": base64.b64encode(blue).decode()}
    ours = scores_of(reranker.rerank(query, [TEXTS[1], {"image": base64.b64encode(red).decode()}]))
    expected_text = reference_score(checkpoint, TEXTS[1], placeholder, [blue])
    # two images: the document's goes first
    expected_image = reference_score(checkpoint, placeholder, placeholder, [red, blue])
    np.testing.assert_allclose([ours[0], ours[1]], [expected_text, expected_image], atol=1e-4)
    swapped = reference_score(checkpoint, placeholder, placeholder, [blue, red])
    assert abs(swapped - ours[1]) > 1e-5


def test_long_documents_are_cut_and_flagged(checkpoint: Path, reranker: Reranker) -> None:
    model = reranker.model
    assert model.max_length == 1024 and model.max_doc_length == 512  # the tiny position table
    long_document = "cats eat fish " * 400
    response = reranker.rerank(QUERY, [long_document, TEXTS[1]], return_documents=False)
    assert {r.index: r.truncated for r in response.results} == {0: True, 1: False}
    smuggled = reranker.rerank(QUERY, ["<|image_pad|> cats eat fish"], return_documents=False)
    assert smuggled.results[0].relevance_score == pytest.approx(
        reference_score(checkpoint, " cats eat fish", QUERY), abs=1e-4
    )


def test_images_are_resized_within_the_visual_token_limits(reranker: Reranker) -> None:
    from PIL import Image

    from omniretrieve.models.qwen_vl_inputs import prepare_image
    from omniretrieve.models.vlm_reranker import MAX_PIXELS, MIN_PIXELS

    processor = reranker.model.image_processor
    counts = {
        size: prepare_image(
            processor, Image.new("RGB", size), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
        ).tokens
        for size in [(20, 20), (56, 56), (3840, 2160)]
    }
    assert counts[(56, 56)] == 4  # 56 / 14 = 4 patches a side, 2x2 merged
    assert counts[(20, 20)] == 4  # enlarged to the minimum
    assert 700 <= counts[(3840, 2160)] <= 768  # a 4K page: at most 768 visual tokens


def test_cli_ranks_image_documents_for_an_image_query(checkpoint: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from omniretrieve.cli import app

    query = tmp_path / "query.png"
    query.write_bytes(png_bytes((30, 30, 200), (56, 64)))
    page = tmp_path / "page.png"
    page.write_bytes(png_bytes((200, 30, 30), (64, 56)))
    items = tmp_path / "documents.jsonl"
    items.write_text(json.dumps({"image": str(page)}) + "\n" + json.dumps({"text": TEXTS[1]}))
    result = CliRunner().invoke(
        app,
        ["rerank", str(query), "--query-image", "-m", str(checkpoint), "-f", str(items)],
    )
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)["results"]
    assert sorted(r["index"] for r in results) == [0, 1]
    placeholder = "<|vision_start|><|image_pad|><|vision_end|>"
    expected = reference_score(
        checkpoint, placeholder, placeholder, [page.read_bytes(), query.read_bytes()]
    )
    got = next(r["relevance_score"] for r in results if r["index"] == 0)
    assert got == pytest.approx(expected, abs=1e-4)


def test_a_billion_parameter_model_warns_before_long_cpu_work(
    reranker: Reranker, caplog: pytest.LogCaptureFixture
) -> None:
    model = reranker.model
    real_size = model.parameters
    try:
        model.parameters = 2_200_000_000  # as the real m0
        with caplog.at_level("WARNING", logger="omniretrieve.models"):
            reranker.rerank(QUERY, TEXTS, return_documents=False)  # short: no warning
            assert not caplog.records
            reranker.rerank(QUERY, ["cats eat fish " * 200] * 20, return_documents=False)
        (record,) = caplog.records
        assert "2.2B parameters" in record.getMessage() and "min" in record.getMessage()
    finally:
        model.parameters = real_size


def test_a_checkpoint_without_the_score_head_is_refused(checkpoint: Path, tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file, save_file

    from omniretrieve.errors import UnsupportedModelError

    headless = tmp_path / "headless"
    shutil.copytree(checkpoint, headless)
    tensors = load_file(str(headless / "model.safetensors"))
    kept = {k: v for k, v in tensors.items() if not k.startswith("score.")}
    save_file(kept, str(headless / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(UnsupportedModelError, match="score"):
        Reranker(headless)
