"""The VLM-embedder family on tiny random checkpoints of BGE-VL-Screenshot's (Qwen2.5-VL) and
BGE-VL-v1.5's (LLaVA-NeXT) architectures, against references computed here: the prompt the
checkpoint's chat template gives, written out by hand; the bare backbone on one unpadded
sequence; the last token's hidden state, L2-normalised."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.models.registry import default_registry
from omniretrieve.models.vlm_embedder import DEFAULT_INSTRUCTIONS
from tests.builders.tiny_clip import png_bytes
from tests.builders.tiny_vlm_embedders import build_tiny_llava_next, build_tiny_qwen25_vl

SCREENSHOT = DEFAULT_INSTRUCTIONS["qwen2.5-vl"]
COMPOSED = DEFAULT_INSTRUCTIONS["llava-next"]


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_qwen25_vl(tmp_path_factory.mktemp("vlm") / "bge-vl-screenshot-tiny")


@pytest.fixture(scope="module")
def llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava_next(tmp_path_factory.mktemp("vlm") / "llava-next-tiny")


@pytest.fixture(scope="module")
def bge_vl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same weights as ``llava``, saved as BGE-VL-v1.5 names its checkpoints."""
    return build_tiny_llava_next(
        tmp_path_factory.mktemp("vlm") / "bge-vl-v1.5-tiny", architecture="LLaVANextForEmbedding"
    )


def pil(data: bytes):
    from PIL import Image

    return Image.open(io.BytesIO(data)).convert("RGB")


def qwen_reference(checkpoint: Path, text: str, images: list[bytes] = ()) -> np.ndarray:
    import torch
    from transformers import AutoTokenizer, Qwen2_5_VLModel, Qwen2VLImageProcessor

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    processor = Qwen2VLImageProcessor.from_pretrained(checkpoint)
    backbone = Qwen2_5_VLModel.from_pretrained(checkpoint).eval()
    arguments = {}
    if images:
        size = {"shortest_edge": 56 * 56, "longest_edge": 1280 * 28 * 28}
        features = processor(images=[pil(d) for d in images], size=size, return_tensors="pt")
        count = int(features["image_grid_thw"][0].prod()) // 4
        text = text.replace("<|image_pad|>", "<|image_pad|>" * count)
        arguments = {k: features[k] for k in ("pixel_values", "image_grid_thw")}
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    with torch.no_grad():
        hidden = backbone(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            mm_token_type_ids=(ids == pad).int(),
            **arguments,
        ).last_hidden_state[0, -1]
    return (hidden / hidden.norm()).numpy()


def llava_reference(checkpoint: Path, text: str, images: list[bytes] = ()) -> np.ndarray:
    import torch
    from transformers import AutoProcessor, LlavaNextModel

    processor = AutoProcessor.from_pretrained(checkpoint)
    backbone = LlavaNextModel.from_pretrained(checkpoint).eval()
    features = processor(text=[text], images=[pil(d) for d in images] or None, return_tensors="pt")
    with torch.no_grad():
        hidden = backbone(**features).last_hidden_state[0, -1]
    return (hidden / hidden.norm()).numpy()


def qwen_turn(content: str) -> str:
    return f"<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"


def test_families_from_architectures(qwen: Path, llava: Path) -> None:
    registry = default_registry()
    assert registry.resolve(qwen).family.name == "vlm-embedder"
    assert registry.resolve(llava).family.name == "vlm-embedder"


def test_screenshot_queries_and_candidates(qwen: Path) -> None:
    embedder = Embedder(qwen, max_batch_size=2)
    page = png_bytes((230, 230, 230), (84, 112))
    image = base64.b64encode(page).decode()
    placeholder = "<|vision_start|><|image_pad|><|vision_end|>"
    queries = embedder.encode(
        ["how to sort a list", {"text": "cats eat fish", "image": image}], task="retrieval.query"
    ).embeddings
    np.testing.assert_allclose(
        queries[0], qwen_reference(qwen, qwen_turn(SCREENSHOT + "how to sort a list")), atol=1e-4
    )
    np.testing.assert_allclose(
        queries[1],
        qwen_reference(qwen, qwen_turn(placeholder + SCREENSHOT + "cats eat fish"), [page]),
        atol=1e-4,
    )
    candidates = embedder.encode([{"image": image}, "a text candidate"]).embeddings
    np.testing.assert_allclose(
        candidates[0], qwen_reference(qwen, qwen_turn(placeholder), [page]), atol=1e-4
    )
    np.testing.assert_allclose(
        candidates[1], qwen_reference(qwen, qwen_turn("a text candidate")), atol=1e-4
    )
    np.testing.assert_allclose(np.linalg.norm(candidates, axis=1), 1.0, atol=1e-5)
    # no instruction, or no chat template, gives other vectors
    bare = qwen_reference(qwen, qwen_turn("how to sort a list"))
    assert np.abs(bare - queries[0]).max() > 1e-3
    plain = qwen_reference(qwen, SCREENSHOT + "how to sort a list")
    assert np.abs(plain - queries[0]).max() > 1e-3


def test_without_a_chat_template_the_prompt_is_plain(tmp_path: Path) -> None:
    checkpoint = build_tiny_qwen25_vl(tmp_path / "plain", chat_template=False)
    vector = Embedder(checkpoint).encode(["how to sort"], instruction="Find: ").embeddings[0]
    np.testing.assert_allclose(vector, qwen_reference(checkpoint, "Find: how to sort"), atol=1e-4)


def test_composed_image_queries_on_llava_next(llava: Path) -> None:
    embedder = Embedder(llava, max_batch_size=2)
    red, blue = png_bytes((200, 30, 30), (60, 40)), png_bytes((30, 30, 200), (40, 60))
    query = {"text": "make it blue", "image": base64.b64encode(red).decode()}
    vectors = embedder.encode(
        [query, {"image": base64.b64encode(blue).decode()}, "a red square"],
        task="retrieval.query",
    ).embeddings
    expected_query = llava_reference(
        llava, f"[INST] <image>\n{COMPOSED}make it blue [/INST]", [red]
    )
    np.testing.assert_allclose(vectors[0], expected_query, atol=1e-4)
    expected_image = llava_reference(llava, f"[INST] <image>\n{COMPOSED} [/INST]", [blue])
    np.testing.assert_allclose(vectors[1], expected_image, atol=1e-4)
    expected_text = llava_reference(llava, f"[INST] {COMPOSED}a red square [/INST]")
    np.testing.assert_allclose(vectors[2], expected_text, atol=1e-4)
    candidate = embedder.encode([{"image": base64.b64encode(blue).decode()}]).embeddings[0]
    np.testing.assert_allclose(
        candidate, llava_reference(llava, "[INST] <image>\n [/INST]", [blue]), atol=1e-4
    )


def test_token_counts_are_what_the_model_read(qwen: Path) -> None:
    from transformers import AutoTokenizer

    page = base64.b64encode(png_bytes((230, 230, 230), (84, 112))).decode()
    result = Embedder(qwen).encode(["how to sort a list", {"image": page}])
    tokenizer = AutoTokenizer.from_pretrained(qwen)
    text_tokens = len(tokenizer(qwen_turn("how to sort a list"))["input_ids"])
    assert result.token_counts[0] == text_tokens
    # 84x112 pixels: 6x8 patches of 14, merged 2x2 into 12 visual tokens, plus the turn's text
    placeholder_turn = len(
        tokenizer(qwen_turn("<|vision_start|><|image_pad|><|vision_end|>"))["input_ids"]
    )
    assert result.token_counts[1] == placeholder_turn - 1 + 12


def test_text_cannot_smuggle_in_image_slots(qwen: Path, llava: Path) -> None:
    vector = Embedder(qwen).encode(["a <|image_pad|>page"]).embeddings[0]
    np.testing.assert_allclose(vector, qwen_reference(qwen, qwen_turn("a page")), atol=1e-4)
    vector = Embedder(llava).encode(["a <image>page"]).embeddings[0]
    np.testing.assert_allclose(vector, llava_reference(llava, "[INST] a page [/INST]"), atol=1e-4)


# BGE-VL-v1.5 (MODEL_RECIPES.md, verified): fixed prompts, images 512x512 RGB, the last
# position of a left-padded batch.
def bge_vl_reference(checkpoint: Path, texts: list[str], images: list[bytes]) -> np.ndarray:
    """The recipe by hand: the processor over the batch padded on the left, the bare
    backbone, the hidden state at position -1, L2-normalised."""
    import torch
    from transformers import AutoProcessor, LlavaNextModel

    processor = AutoProcessor.from_pretrained(checkpoint)
    processor.tokenizer.padding_side = "left"
    backbone = LlavaNextModel.from_pretrained(checkpoint).eval()
    resized = [pil(d).resize((512, 512)) for d in images]
    features = processor(text=texts, images=resized or None, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = backbone(**features).last_hidden_state[:, -1]
    return torch.nn.functional.normalize(hidden, dim=-1).numpy()


def test_bge_vl_prompts_are_the_reference_codes(bge_vl: Path) -> None:
    from omniretrieve.inputs import parse_input

    assert default_registry().resolve(bge_vl).family.name == "vlm-embedder"
    embedder = Embedder(bge_vl)
    model = embedder.model
    red = base64.b64encode(png_bytes((200, 30, 30), (60, 40))).decode()
    composed = parse_input({"text": "make it blue", "image": red}, field="input")
    query = model.prompt(composed, model.instruction_for("retrieval.query", None), 0, query=True)
    assert query.text == f"[INST] \n <instruct> {COMPOSED} <query>  make it blue \n <image> [/INST]"
    assert query.images[0].size == (512, 512) and query.images[0].mode == "RGB"
    text_candidate = model.prompt(parse_input("a red square", field="input"), "", 0, query=False)
    assert text_candidate.text == "[INST]  a red square \n [/INST]"
    image_candidate = model.prompt(parse_input({"image": red}, field="input"), "", 0, query=False)
    assert image_candidate.text == "[INST]  <image> [/INST]"
    no_instruction = model.prompt(parse_input("cats", field="input"), "", 0, query=True)
    assert no_instruction.text == "[INST] \n <instruct>  <query>  cats \n [/INST]"


def test_bge_vl_vectors_follow_the_recipe_in_left_padded_batches(bge_vl: Path, llava: Path) -> None:
    red, blue = png_bytes((200, 30, 30), (60, 40)), png_bytes((30, 30, 200), (40, 60))
    embedder = Embedder(bge_vl, max_batch_size=2)
    composed = {"text": "make it blue", "image": base64.b64encode(red).decode()}
    query_texts = [
        f"[INST] \n <instruct> {COMPOSED} <query>  make it blue \n <image> [/INST]",
        f"[INST] \n <instruct> {COMPOSED} <query>  a much longer query about squares \n [/INST]",
    ]
    queries = embedder.encode(
        [composed, "a much longer query about squares"], task="retrieval.query"
    )
    expected = bge_vl_reference(bge_vl, query_texts, [red])
    np.testing.assert_allclose(queries.embeddings, expected, atol=1e-4)
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(bge_vl)
    resized = [pil(red).resize((512, 512))]
    ids = processor(text=query_texts[:1], images=resized, return_tensors="pt")["input_ids"]
    assert queries.token_counts[0] == ids.shape[1]  # the tokens the model read
    candidates = embedder.encode(
        [{"image": base64.b64encode(blue).decode()}, "a red square"]
    ).embeddings
    expected = bge_vl_reference(
        bge_vl, ["[INST]  <image> [/INST]", "[INST]  a red square \n [/INST]"], [blue]
    )
    np.testing.assert_allclose(candidates, expected, atol=1e-4)
    # the same weights through the chat template (plain LLaVA-NeXT) give other vectors
    templated = Embedder(llava, max_batch_size=2).encode(
        [composed, "a much longer query about squares"], task="retrieval.query"
    )
    assert np.abs(templated.embeddings - queries.embeddings).max() > 1e-3
