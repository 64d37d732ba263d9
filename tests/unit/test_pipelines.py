from __future__ import annotations

import pytest

from omniretrieve.errors import InputError
from omniretrieve.eval.pipelines import parse_pipeline
from omniretrieve.models.registry import DEFAULT_EMBEDDER, DEFAULT_RERANKER


@pytest.mark.parametrize(
    ("spec", "mode", "embedders", "reranker", "ocr"),
    [
        ("bm25", "sparse", (), None, False),
        ("dense", "dense", (DEFAULT_EMBEDDER,), None, False),
        ("dense:BAAI/bge-code-v1", "dense", ("BAAI/bge-code-v1",), None, False),
        ("hybrid", "hybrid", (DEFAULT_EMBEDDER,), None, False),
        ("hybrid:a,b", "hybrid", ("a", "b"), None, False),
        ("hybrid+rerank", "hybrid", (DEFAULT_EMBEDDER,), DEFAULT_RERANKER, False),
        ("bm25+rerank:/models/m0", "sparse", (), "/models/m0", False),
        ("ocr+hybrid+rerank", "hybrid", (DEFAULT_EMBEDDER,), DEFAULT_RERANKER, True),
        ("ocr+bm25", "sparse", (), None, True),
    ],
)
def test_grammar(spec: str, mode: str, embedders: tuple, reranker: str | None, ocr: bool) -> None:
    pipeline = parse_pipeline(spec)
    assert (pipeline.mode, pipeline.embedders, pipeline.reranker, pipeline.ocr) == (
        mode,
        embedders,
        reranker,
        ocr,
    )


@pytest.mark.parametrize(
    ("spec", "reranker", "diversity"),
    [
        ("hybrid", None, None),
        ("hybrid+mmr", None, 0.5),
        ("hybrid+rerank+mmr:0.3", DEFAULT_RERANKER, 0.3),
        ("bm25+rerank:/models/m0+mmr:1", "/models/m0", 1.0),
        ("rerank+mmr:0", DEFAULT_RERANKER, 0.0),
    ],
)
def test_mmr_comes_last(spec: str, reranker: str | None, diversity: float | None) -> None:
    pipeline = parse_pipeline(spec)
    assert (pipeline.spec, pipeline.reranker, pipeline.diversity) == (spec, reranker, diversity)


@pytest.mark.parametrize(
    "spec",
    [
        "", "bm26", "bm25:minilm", "hybrid+rank", "dense+rerank:", "dense:", "hybrid:a,,b",
        "+mmr", "hybrid+mmr:2", "hybrid+mmr:x", "hybrid+mmr+rerank",
    ],
)  # fmt: skip
def test_bad_pipelines_name_the_field(spec: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_pipeline(spec)
    assert caught.value.field == "pipeline"
