"""Corpus embedding on workers: N local processes (``--workers``) and a Dask cluster
(``--dask-scheduler``; here a ``LocalCluster`` bound to 127.0.0.1, started by the test, never by
the package) give the vectors the process itself gives, and ``omniretrieve index`` writes them
into a Milvus-native collection that searches like one indexed in one process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from omniretrieve import Embedder
from omniretrieve.cli.app import app
from omniretrieve.errors import ModelIntegrityError
from omniretrieve.index.collection import Collection
from omniretrieve.index.workers import PooledEmbedder, ProcessPool

pytest.importorskip("pymilvus")
TEXTS = [
    f"Document {i} talks about {'cats' if i % 2 else 'markets'} and topic {i % 7}."
    for i in range(50)
]


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    )  # fmt: skip
    yield cluster
    cluster.close()


def test_local_processes_embed_as_this_process(tiny_bert_dir: Path) -> None:
    local = Embedder(tiny_bert_dir)
    pool = ProcessPool(2)
    try:
        pooled = PooledEmbedder(local, pool)
        assert pooled.preferred_chunk == 128
        ours = pooled.encode_texts(TEXTS, task="retrieval.passage")
        np.testing.assert_allclose(ours, local.encode_texts(TEXTS, task="retrieval.passage"),
                                   atol=1e-6)  # fmt: skip
    finally:
        pool.close()


def test_a_worker_with_other_weights_is_refused(tiny_bert_dir: Path, tmp_path: Path) -> None:
    class OtherWeights:
        size = 1

        def map(self, model_id, dtype, chunks, options):
            return [("another-fingerprint", np.zeros((len(c), 32), np.float32)) for c in chunks]

        def close(self) -> None: ...

    pooled = PooledEmbedder(Embedder(tiny_bert_dir), OtherWeights())
    with pytest.raises(ModelIntegrityError, match="same weights"):
        pooled.encode_texts(TEXTS[:3])


def test_index_on_a_dask_cluster_into_milvus(dask_cluster, tiny_bert_dir: Path, tmp_path: Path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n"
                              for i, t in enumerate(TEXTS)))  # fmt: skip
    common = ["--from", str(corpus), "--root", str(tmp_path), "-e", str(tiny_bert_dir),
              "--vector-store", "milvus", "--sparse", "milvus"]  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(app, ["index", "here", *common])
    assert result.exit_code == 0, result.output
    address = dask_cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    result = runner.invoke(  # into documents held by Milvus alone
        app, ["index", "dask", *common, "--storage", "milvus", "--dask-scheduler", address]
    )
    assert result.exit_code == 0, result.output
    from distributed import Client

    with Client(address) as client:  # the workers embedded: each loaded the model
        loaded = client.run(
            lambda: len(__import__("omniretrieve.index.workers").index.workers._LOADED)
        )
    assert sorted(loaded.values()) == [1, 1]
    assert not list((tmp_path / "dask").glob("snap-*"))
    with (
        Collection.open("here", root=tmp_path, read_only=True) as here,
        Collection.open("dask", root=tmp_path, read_only=True) as there,
    ):
        for query in ("cats and topic 3", "markets"):
            for mode in ("dense", "sparse", "hybrid"):
                a = here.search(query, mode=mode, top_k=5)
                b = there.search(query, mode=mode, top_k=5)
                assert [h.doc_id for h in a] == [h.doc_id for h in b], (query, mode)
    refused = runner.invoke(app, ["index", "x", *common, "--dask-scheduler", "tcp://127.0.0.1:9",
                                  "--workers", "2"])  # fmt: skip
    assert refused.exit_code == 2 and "not both" in refused.output
