"""Every LoRA family trains on its tiny checkpoint: the loss falls, the adapter is a standard
peft directory, and it loads back through the registry merged into the weights, giving what
the unmerged peft model gives."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omniretrieve import Embedder, Reranker
from omniretrieve.training.examples import Pair, TrainingData, positives_by_query
from omniretrieve.training.finetune import finetune
from omniretrieve.training.settings import TrainSettings
from tests.builders.tiny_clip import build_tiny_clip, png_bytes
from tests.builders.tiny_m0 import build_tiny_m0
from tests.builders.tiny_qwen2 import build_tiny_qwen2_embedder
from tests.builders.tiny_vlm_embedders import build_tiny_llava_next, build_tiny_qwen25_vl

WORDS = "add sort list items return sorted value code parse json file read write".split()
COLOURS = [(250, 10, 10), (10, 250, 10), (10, 10, 250), (250, 250, 10), (10, 250, 250)]


def _text_pairs(count: int, negatives: int = 0) -> list[Pair]:
    rng = np.random.default_rng(0)
    documents = [" ".join(rng.choice(WORDS, 6)) for _ in range(count + negatives + 4)]
    return [
        Pair(
            " ".join(documents[i].split()[:2]),
            documents[i],
            f"d{i}",
            tuple(documents[count + (i + k) % 4] for k in range(negatives)),
            tuple(f"d{count + (i + k) % 4}" for k in range(negatives)),
        )
        for i in range(count)
    ]


def _image_pairs(count: int) -> list[Pair]:
    import base64

    uri = "data:image/png;base64,{}"
    return [
        Pair(
            f"colour {i}",
            {"image": uri.format(base64.b64encode(png_bytes(COLOURS[i % 5])).decode())},  # type: ignore[arg-type]
            f"d{i}",
        )
        for i in range(count)
    ]


FAMILIES: dict[str, tuple[Callable[[Path], Path], str, Callable[[], list[Pair]]]] = {
    "decoder-embedder": (build_tiny_qwen2_embedder, "embedder", lambda: _text_pairs(10)),
    "clip": (build_tiny_clip, "embedder", lambda: _image_pairs(10)),
    "qwen2.5-vl-embedder": (build_tiny_qwen25_vl, "embedder", lambda: _text_pairs(10)),
    "llava-next-embedder": (build_tiny_llava_next, "embedder", lambda: _text_pairs(10)),
    "m0-reranker": (build_tiny_m0, "reranker", lambda: _text_pairs(10, negatives=2)),
}


def _losses(record: dict[str, Any]) -> list[float]:
    return [entry["loss"] for entry in record["held_out"]["log"] if "loss" in entry]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_lora_step_lowers_the_loss_and_the_adapter_loads_back(
    tmp_path: Path, family: str
) -> None:
    build, kind, make_pairs = FAMILIES[family]
    base = build(tmp_path / "base")
    pairs = make_pairs()
    corpus = {p.positive_id: p.positive for p in pairs if isinstance(p.positive, str)}
    data = TrainingData(pairs, corpus, positives_by_query(pairs))
    settings = TrainSettings(
        epochs=4,
        batch_size=16,  # every training pair in one batch: each step sees the same loss
        learning_rate=5e-3,
        held_out=0.2,
        keep_rejected=True,
        patience=10,
        evaluations_per_epoch=1,
        precision="fp32",
        keep_best=False,  # two held-out queries of a random model tie: keep the last step
    )
    result = finetune(base, data, tmp_path / "tuned", mining=None, settings=settings)
    assert result.record["method"] == "lora"
    losses = _losses(result.record)
    assert len(losses) >= 3 and losses[-1] < losses[0], losses

    out = tmp_path / "tuned"
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and Path(adapter["base_model_name_or_path"]) == base
    assert (out / "adapter_model.safetensors").is_file() and (out / "training.json").is_file()

    probe: list[Any] = [p.query for p in pairs[:3]]
    if kind == "embedder":
        merged, unmerged, untrained = (_embed(m, probe) for m in (out, "peft", base))
    else:
        documents = [p.positive for p in pairs[:4]]
        merged, unmerged, untrained = (_rerank(m, probe[0], documents) for m in (out, "peft", base))
    np.testing.assert_allclose(merged, unmerged(out, base), atol=1e-5)
    assert not np.allclose(merged, untrained, atol=1e-4)  # the adapter changed the model


def _embed(model: Any, texts: list[Any]) -> Any:
    if model == "peft":
        return lambda out, base: _embed_unmerged(out, base, texts)
    return Embedder(model, dtype="float32").encode_texts(texts)


def _embed_unmerged(out: Path, base: Path, texts: list[Any]) -> np.ndarray:
    from peft import PeftModel

    embedder = Embedder(base, dtype="float32")
    embedder.model.model = PeftModel.from_pretrained(embedder.model.model, str(out)).eval()
    return embedder.encode_texts(texts)


def _rerank(model: Any, query: str, documents: list[Any]) -> Any:
    if model == "peft":
        return lambda out, base: _rerank_unmerged(out, base, query, documents)
    return _scores(Reranker(model, dtype="float32"), query, documents)


def _rerank_unmerged(out: Path, base: Path, query: str, documents: list[Any]) -> np.ndarray:
    from peft import PeftModel

    reranker = Reranker(base, dtype="float32")
    reranker.model.model = PeftModel.from_pretrained(reranker.model.model, str(out)).eval()
    return _scores(reranker, query, documents)


def _scores(reranker: Reranker, query: str, documents: list[Any]) -> np.ndarray:
    response = reranker.rerank(query, documents, return_documents=False)
    by_index = {r.index: r.relevance_score for r in response.results}
    return np.array([by_index[i] for i in range(len(documents))])
