"""ColQwen2 and ColPali (the ``colpali`` family) on tiny random checkpoints saved by
transformers' own classes, against a reference computed here with those classes one input at
a time (the processor's query and image prompts, the model's embeddings at the positions the
attention mask keeps) within 1e-5; MaxSim against the processor's ``score_retrieval``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from omniretrieve import Embedder
from omniretrieve.errors import InputError
from omniretrieve.inputs import ImageInput, MixedInput
from omniretrieve.models.registry import default_registry
from omniretrieve.multi_vector import maxsim
from tests.builders.tiny_late_interaction import build_tiny_colpali, build_tiny_colqwen2

QUERIES = ["what is the tax rate in 2021", "cats"]


def page(color: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", size, color)
    ImageDraw.Draw(picture).rectangle([5, 5, size[0] // 2, size[1] // 3], fill=(0, 0, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


PAGES = [page((240, 240, 230), (120, 160)), page((30, 200, 90), (90, 60))]
BUILDERS = {"colqwen2": build_tiny_colqwen2, "colpali": build_tiny_colpali}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # a name of another family: the registry must read config.json
    return BUILDERS[request.param](tmp_path_factory.mktemp(request.param) / "bge-m3-looking")


def reference(path: Path, *, text: str | None = None, image: bytes | None = None) -> np.ndarray:
    import transformers
    from PIL import Image

    architecture = transformers.AutoConfig.from_pretrained(path).architectures[0]
    processor_name = (
        "ColPaliProcessor" if architecture.startswith("ColPali") else "ColQwen2Processor"
    )
    processor = getattr(transformers, processor_name).from_pretrained(path)
    model = getattr(transformers, architecture).from_pretrained(path).eval()
    if text is not None:
        inputs = processor(text=[text], return_tensors="pt")
    else:
        assert image is not None
        inputs = processor(
            images=[Image.open(io.BytesIO(image)).convert("RGB")], return_tensors="pt"
        )
    with torch.no_grad():
        embeddings = model(**inputs).embeddings[0]
    return embeddings[inputs["attention_mask"][0].bool()].numpy()


def reference_score(path: Path, query: np.ndarray, document: np.ndarray) -> float:
    import transformers

    processor = transformers.ColQwen2Processor  # score_retrieval is the same in both
    scores = processor.score_retrieval(
        processor.__new__(processor), [torch.from_numpy(query)], [torch.from_numpy(document)]
    )
    return float(scores[0, 0])


def test_recognised_by_architecture(checkpoint: Path) -> None:
    assert default_registry().resolve(checkpoint).family.name == "colpali"


def test_vectors_and_scores_equal_the_reference(checkpoint: Path) -> None:
    embedder = Embedder(checkpoint, dtype="float32")
    items = [*QUERIES, *(ImageInput(p) for p in PAGES)]
    result = embedder.encode(items, return_multivector=True)
    assert result.multivectors is not None and not result.dense
    expected = [reference(checkpoint, text=q) for q in QUERIES]
    expected += [reference(checkpoint, image=p) for p in PAGES]
    for ours, theirs in zip(result.multivectors, expected, strict=True):
        assert isinstance(ours, np.ndarray) and ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, atol=1e-5)
    for q in range(len(QUERIES)):
        for d in range(len(QUERIES), len(items)):
            ours_score = maxsim(result.multivectors[q], result.multivectors[d], "sum")
            assert ours_score == pytest.approx(
                reference_score(checkpoint, expected[q], expected[d]), abs=1e-4
            )
    assert embedder.model.multivector_reduce == "sum"


def test_one_vector_per_input_is_refused(checkpoint: Path) -> None:
    embedder = Embedder(checkpoint, dtype="float32")
    with pytest.raises(InputError) as raised:
        embedder.encode(QUERIES)
    assert raised.value.field == "return_multivector"
    with pytest.raises(InputError) as mixed:
        embedder.encode([MixedInput("x", ImageInput(PAGES[0]))], return_multivector=True)
    assert mixed.value.field == "input[0]"


def test_served_per_token_vectors(checkpoint: Path, server_pool, tmp_path: Path) -> None:
    import base64

    from fastapi.testclient import TestClient

    from omniretrieve.server.app import create_app
    from omniretrieve.server.config import ServerConfig

    config = ServerConfig(models=(str(checkpoint),), collections_root=tmp_path)
    expected = reference(checkpoint, image=PAGES[1])
    picture = "data:image/png;base64," + base64.b64encode(PAGES[1]).decode()
    with TestClient(create_app(config, pool=server_pool(config))) as client:
        body = {"model": str(checkpoint), "input": [QUERIES[0], {"image": picture}]}
        response = client.post("/v1/embeddings", json={**body, "return_multivector": True})
        assert response.status_code == 200, response.text
        rows = response.json()["data"]
        assert all("embedding" not in row for row in rows)
        np.testing.assert_allclose(np.array(rows[1]["embeddings"]), expected, atol=1e-5)
        refused = client.post("/v1/embeddings", json=body)
        assert refused.status_code == 422
        assert refused.json()["error"]["field"] == "return_multivector"
