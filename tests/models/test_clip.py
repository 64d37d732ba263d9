"""The CLIP family on a tiny random CLIPModel, against a reference computed here from the bare
towers: the text at its end-of-text token, the image at its class token, each through its
projection matrix read from model.safetensors, L2-normalised."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.errors import InputError
from omniretrieve.models.registry import default_registry
from tests.builders.tiny_clip import build_tiny_clip, png_bytes

TEXTS = ["a cat", "the fish and the dog are here", "dog"]
COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "bert-base-looking-name")


def reference_text(checkpoint: Path, texts: list[str], *, at_first: bool = False) -> np.ndarray:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, CLIPTextModel

    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    tower = CLIPTextModel.from_pretrained(checkpoint).eval()
    projection = load_file(str(checkpoint / "model.safetensors"))["text_projection.weight"]
    rows = []
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        end = 0 if at_first else ids.index(tokenizer.eos_token_id)
        with torch.no_grad():
            hidden = tower(input_ids=torch.tensor([ids])).last_hidden_state[0, end]
        vector = projection @ hidden
        rows.append((vector / vector.norm()).numpy())
    return np.stack(rows)


def reference_images(checkpoint: Path, images: list[bytes]) -> np.ndarray:
    import io

    import torch
    from PIL import Image
    from safetensors.torch import load_file
    from transformers import CLIPImageProcessor, CLIPVisionModel

    processor = CLIPImageProcessor.from_pretrained(checkpoint)
    tower = CLIPVisionModel.from_pretrained(checkpoint).eval()
    projection = load_file(str(checkpoint / "model.safetensors"))["visual_projection.weight"]
    rows = []
    for data in images:
        pixels = processor(images=Image.open(io.BytesIO(data)).convert("RGB"), return_tensors="pt")
        with torch.no_grad():
            pooled = tower(pixel_values=pixels["pixel_values"]).pooler_output[0]
        vector = projection @ pooled
        rows.append((vector / vector.norm()).numpy())
    return np.stack(rows)


def test_family_from_architectures(checkpoint: Path) -> None:
    source = default_registry().resolve(checkpoint)
    assert source.family.name == "clip" and source.family.modalities == {"text", "image"}
    assert Embedder(checkpoint).dimension == 16


def test_texts_and_images_equal_the_reference(checkpoint: Path, tmp_path: Path) -> None:
    embedder = Embedder(checkpoint, max_batch_size=2)
    images = [png_bytes(color) for color in COLORS]
    path = tmp_path / "blue.png"
    path.write_bytes(images[2])
    data_uri = "data:image/png;base64," + base64.b64encode(images[1]).decode()
    mixed = [
        {"text": TEXTS[0]},
        {"image": base64.b64encode(images[0]).decode()},
        {"text": TEXTS[1]},
        {"image": data_uri},
        {"image": str(path)},
        {"text": TEXTS[2]},
    ]
    vectors = embedder.encode(mixed).embeddings
    np.testing.assert_allclose(vectors[[0, 2, 5]], reference_text(checkpoint, TEXTS), atol=1e-4)
    np.testing.assert_allclose(vectors[[1, 3, 4]], reference_images(checkpoint, images), atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # pooling at the first token instead of the end-of-text token gives other vectors
    wrong = reference_text(checkpoint, TEXTS, at_first=True)
    assert np.abs(wrong - vectors[[0, 2, 5]]).max() > 1e-3


def test_text_and_image_in_one_input_is_refused(checkpoint: Path) -> None:
    embedder = Embedder(checkpoint)
    image = base64.b64encode(png_bytes(COLORS[0])).decode()
    with pytest.raises(InputError) as caught:
        embedder.encode([{"text": "a cat"}, {"text": "a cat", "image": image}])
    assert caught.value.field == "input[1]"
    with pytest.raises(InputError):
        embedder.encode([{"image": "not base64 and not a file"}])


def test_siglip_texts_are_padded_to_their_trained_length(tmp_path: Path) -> None:
    """SigLIP pools the text at the last position of a text padded to max length: the
    reference pads by hand, takes that position and applies the head's tensors."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, SiglipTextModel

    from tests.builders.tiny_clip import build_tiny_siglip

    checkpoint = build_tiny_siglip(tmp_path / "siglip-tiny")
    assert default_registry().resolve(checkpoint).family.name == "clip"
    embedder = Embedder(checkpoint)
    assert embedder.dimension == 32
    vectors = embedder.encode(TEXTS[:2]).embeddings
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    tower = SiglipTextModel.from_pretrained(checkpoint).eval()
    tensors = load_file(str(checkpoint / "model.safetensors"))
    weight, bias = tensors["text_model.head.weight"], tensors["text_model.head.bias"]
    for text, vector in zip(TEXTS[:2], vectors, strict=True):
        ids = tokenizer(text)["input_ids"]
        padded = ids + [tokenizer.pad_token_id] * (16 - len(ids))
        with torch.no_grad():
            hidden = tower(input_ids=torch.tensor([padded])).last_hidden_state[0, -1]
        expected = weight @ hidden + bias
        np.testing.assert_allclose(vector, (expected / expected.norm()).numpy(), atol=1e-4)
        unpadded = tower(input_ids=torch.tensor([ids])).pooler_output[0]
        assert np.abs((unpadded / unpadded.norm()).detach().numpy() - vector).max() > 1e-3
    image = embedder.encode([{"image": base64.b64encode(png_bytes(COLORS[0])).decode()}])
    np.testing.assert_allclose(np.linalg.norm(image.embeddings, axis=1), 1.0, atol=1e-5)


def test_collections_store_image_vectors_from_an_image_model(
    checkpoint: Path, tmp_path: Path
) -> None:
    from omniretrieve.index.collection import IMAGE_SPAN, Collection, CollectionSettings

    model = str(checkpoint)
    embedder = Embedder(checkpoint)
    red = "data:image/png;base64," + base64.b64encode(png_bytes(COLORS[0])).decode()
    blue = base64.b64encode(png_bytes(COLORS[2])).decode()
    settings = CollectionSettings(embedders=(model,), ocr_images=False)
    documents = [
        {"id": "red", "text": "", "image": red},
        {"id": "blue", "text": "a blue square", "image": blue},
        {"id": "dog", "text": "the dog and the fish"},
    ]
    with Collection.create(
        "pics", root=tmp_path, settings=settings, embedders={model: embedder}
    ) as collection:
        collection.upsert(documents)
        np.testing.assert_allclose(
            collection.vectors("red", model),
            embedder.encode([{"image": red}]).embeddings,
            atol=1e-5,
        )
        both = collection.vectors("blue", model)
        expected = embedder.encode([{"text": "a blue square"}, {"image": blue}]).embeddings
        np.testing.assert_allclose(both, expected, atol=1e-5)
        query = embedder.encode(["a red square"]).embeddings[0]
        hits = collection.search("a red square", mode="dense", top_k=3)
        scores = {h.doc_id: h.score for h in hits}
        assert set(scores) == {"red", "blue", "dog"}
        assert scores["red"] == pytest.approx(float(query @ collection.vectors("red", model)[0]))
    with Collection.open("pics", root=tmp_path, embedders={model: embedder}) as reopened:
        spans = reopened.spans("red")
        assert [tuple(span) for span in spans] == [IMAGE_SPAN]
