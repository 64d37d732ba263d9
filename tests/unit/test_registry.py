"""Families are chosen from config.json and the files present, never from the name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from omniretrieve.errors import (
    ModelIntegrityError,
    ModelNotFoundError,
    ModelUnavailableError,
    UnsupportedModelError,
)
from omniretrieve.models.registry import (
    BUNDLED,
    UNREACHABLE,
    BundledModel,
    CheckpointInfo,
    Registry,
    default_registry,
)
from tests.builders.tiny_bert import build_tiny_bert, write_qwen2_config


def test_bundled_ids_resolve_without_network() -> None:
    registry = default_registry()
    minilm = registry.resolve("all-MiniLM-L6-v2", allow_download=False)
    assert minilm.family.name == "sentence-encoder"
    assert minilm.path is not None and (minilm.path / "model.safetensors").is_file()
    assert registry.resolve("sentence-transformers/all-MiniLM-L6-v2").model_id == "all-MiniLM-L6-v2"
    reranker = registry.resolve("omniretrieve-hybrid-reranker")
    assert reranker.family.kind == "reranker" and reranker.path is None


def test_family_comes_from_architectures_not_the_name(tiny_bert_dir: Path, tmp_path: Path) -> None:
    registry = default_registry()
    source = registry.resolve(tiny_bert_dir)
    assert "qwen2" in tiny_bert_dir.name and source.family.name == "sentence-encoder"
    disguised = write_qwen2_config(tmp_path / "all-MiniLM-L6-v2-bert-encoder")
    with pytest.raises(UnsupportedModelError, match="Qwen2ForCausalLM"):
        registry.resolve(disguised)


def test_masked_lm_architecture_is_an_encoder(tmp_path: Path) -> None:
    path = build_tiny_bert(tmp_path / "x", architectures=("BertForMaskedLM",))
    assert default_registry().resolve(path).family.name == "sentence-encoder"


def test_directory_without_config(tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(UnsupportedModelError, match="no config.json"):
        default_registry().resolve(tmp_path)


def test_names_that_are_neither_path_nor_hub_id() -> None:
    with pytest.raises(ModelNotFoundError, match="neither a bundled model") as info:
        default_registry().resolve("not a model/../x y")
    assert info.value.field == "model"


def test_hub_id_not_cached_and_no_download() -> None:
    with pytest.raises(ModelUnavailableError) as info:
        default_registry().resolve("BAAI/bge-code-v1", allow_download=False)
    assert info.value.message == UNREACHABLE.format(model="BAAI/bge-code-v1")


def copy_bundle(tmp_path: Path) -> Path:
    source = default_registry().resolve("all-MiniLM-L6-v2").path
    assert source is not None
    return Path(shutil.copytree(source, tmp_path / "minilm"))


def registry_with_bundle_at(path: Path) -> Registry:
    minilm = BUNDLED[0]
    entry = BundledModel(
        model_id=minilm.model_id,
        family=minilm.family,
        locate=lambda: path,
        checksums=minilm.checksums,
    )
    return Registry(default_registry().families.values(), bundled=(entry,))


def test_tampered_bundled_weights_are_refused(tmp_path: Path) -> None:
    copy = copy_bundle(tmp_path)
    registry = registry_with_bundle_at(copy)
    registry.resolve("all-MiniLM-L6-v2").verify()  # an intact copy passes
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="modified or corrupted"):
        registry.resolve("all-MiniLM-L6-v2").verify()
    from omniretrieve import Embedder

    with pytest.raises(ModelIntegrityError):
        Embedder("all-MiniLM-L6-v2", registry=registry)


def test_missing_bundled_file_is_refused(tmp_path: Path) -> None:
    copy = copy_bundle(tmp_path)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        registry_with_bundle_at(copy).resolve("all-MiniLM-L6-v2").verify()


def test_checkpoint_info_reads_files(tiny_bert_dir: Path) -> None:
    info = CheckpointInfo.read(tiny_bert_dir)
    assert info.architectures == ("BertModel",)
    assert {"config.json", "model.safetensors", "1_Pooling/config.json"} <= info.files


def test_listing_has_dimension_modality_family() -> None:
    rows = {row.model_id: row for row in default_registry().list_local()}
    minilm = rows["all-MiniLM-L6-v2"]
    assert (minilm.family, minilm.kind, minilm.dimension, minilm.modalities) == (
        "sentence-encoder",
        "embedder",
        384,
        ("text",),
    )
    assert rows["omniretrieve-hybrid-reranker"].kind == "reranker"
