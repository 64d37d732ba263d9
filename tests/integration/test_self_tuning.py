"""Collections that tune their own fusion from pseudo-queries (no labels): what the fit may
read, that it is reproducible, that it drops a useless signal, and that search, upserts,
the CLI and the evaluation use it."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from omniretrieve.embedder import EmbeddingResult
from omniretrieve.eval.layouts import load_eval_dataset
from omniretrieve.index.collection import Collection, CollectionSettings
from omniretrieve.index.tuning.pseudo_queries import draw_pseudo_queries

pytestmark = pytest.mark.slow


class NoiseEmbedder:
    """MiniLM's tokenizer and limits, random vectors (seeded by the text): a dense signal
    that carries no information."""

    def __init__(self, base: Any) -> None:
        self._base = base
        self.model_id = "noise"
        self.dimension = 32
        self.max_length = base.max_length
        self.modalities = frozenset({"text"})
        self.languages = None
        self.model = base.model

    def token_offsets(self, text: str) -> Any:
        return self._base.token_offsets(text)

    def encode_texts(self, texts: Any, **options: Any) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            row = np.random.default_rng(seed).standard_normal(self.dimension)
            rows.append(row / np.linalg.norm(row))
        return np.asarray(rows, dtype=np.float32)

    def encode(self, inputs: Any, **options: Any) -> EmbeddingResult:
        raise AssertionError("text only")


@pytest.fixture(scope="module")
def cranfield_documents(datasets_dir: Path) -> list[dict[str, Any]]:
    dataset = load_eval_dataset(datasets_dir / "cranfield")
    return [{"id": d.doc_id, "text": d.full_text} for d in dataset.corpus.values() if not d.empty]


@pytest.fixture(scope="module")
def noise_collection(tmp_path_factory, cranfield_documents, minilm):
    """Cranfield with BM25 and a noise field (fusion auto), tuned without a reranker (the
    reranker's mix is tested on a collection that holds its embedder's vectors)."""
    root = tmp_path_factory.mktemp("tuned")
    collection = Collection.create(
        "cranfield-noise",
        root=root,
        settings=CollectionSettings(embedders=("noise",)),
        embedders={"noise": NoiseEmbedder(minilm)},
    )
    collection.options.auto_tune = False
    collection.upsert(cranfield_documents)
    assert collection.tuning() is None
    collection.tune(reranker="")
    yield collection
    collection.close()


def test_a_noise_signal_is_not_fused(noise_collection) -> None:
    tuning = noise_collection.tuning()
    assert tuning is not None and (noise_collection.directory / "tuning.json").is_file()
    assert tuning.weights == (1.0, 0.0), tuning.weights  # BM25 alone
    assert tuning.alone["bm25"] > 0.5 > tuning.alone["dense:noise"]
    assert tuning.queries == 400 and tuning.documents == len(noise_collection)
    assert tuning.rerank is None


def test_search_uses_the_fitted_fusion(noise_collection) -> None:
    tuning = noise_collection.tuning()
    query = "what similarity laws must be obeyed when constructing aeroelastic models"
    tuned = noise_collection.search(query, top_k=10)
    given = noise_collection.search_many(
        [query], top_k=10, fusion_weights=tuning.weights, fusion_method=tuning.method
    )[0]
    bm25 = noise_collection.search(query, top_k=10, mode="sparse")
    assert [h.doc_id for h in tuned] == [h.doc_id for h in given] == [h.doc_id for h in bm25]
    equal = noise_collection.search(query, top_k=10, fusion_weights=(1.0, 1.0))
    assert [h.doc_id for h in equal] != [h.doc_id for h in tuned]  # the noise moved them


def test_the_fit_is_the_same_for_a_seed_and_reads_documents_only(
    noise_collection, datasets_dir: Path
) -> None:
    """No file of the dataset (its queries, its qrels) is opened while fitting, and the
    same seed gives the same queries, candidates and choice."""
    opened: list[str] = []

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if event == "open" and isinstance(args[0], str | Path):
            opened.append(str(args[0]))

    sys.addaudithook(audit)  # (hooks cannot be removed: this one only records)
    recording = len(opened)
    first = noise_collection.tune(seed=7, reranker="")
    read = opened[recording:]
    second = noise_collection.tune(seed=7, reranker="")
    assert not [p for p in read if str(datasets_dir.resolve()) in str(Path(p).resolve())]
    assert (first.weights, first.method, first.candidates) == (
        second.weights,
        second.method,
        second.candidates,
    )
    documents = noise_collection.state().documents
    drawn = draw_pseudo_queries(documents, 400, seed=7)
    queries = load_eval_dataset(datasets_dir / "cranfield").tasks[0].queries.values()
    assert not {q.text for q in drawn} & set(queries)
    third = noise_collection.tune(seed=8, reranker="")
    assert [c.ndcg for c in third.candidates] != [c.ndcg for c in first.candidates]


def test_a_reranker_that_does_not_gain_is_skipped(noise_collection, monkeypatch) -> None:
    """A share of 1 (the fit found no gain) keeps the first stage and calls no reranker."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the reranker was called")

    monkeypatch.setattr("omniretrieve.index.pipeline.reranking.rerank_candidates", fail)
    query = "aeroelastic models of heated high speed aircraft"
    kept = noise_collection.search_many([query], rerank=True, rerank_share=1.0)[0]
    assert "rerank" not in kept[0].scores
    monkeypatch.undo()
    reranked = noise_collection.search_many([query], rerank=True, rerank_share=0.0)[0]
    assert "rerank" in reranked[0].scores


def test_fixed_fusion_is_not_tuned(tmp_path: Path, cranfield_documents, minilm) -> None:
    collection = Collection.create(
        "fixed",
        root=tmp_path,
        settings=CollectionSettings(embedders=("noise",), fusion="zscore"),
        embedders={"noise": NoiseEmbedder(minilm)},
    )
    with collection:
        collection.upsert(cranfield_documents[:300])
        assert collection.tuning() is None and not (collection.directory / "tuning.json").exists()


def test_index_tunes_and_the_cli_retunes_and_shows(tmp_path: Path, datasets_dir: Path) -> None:
    """``index`` (an upsert past 100 documents) fits the fusion and the reranker's mix;
    ``collections tune NAME`` fits again on other pseudo-queries; ``collections show``
    prints the fit with every candidate."""
    from typer.testing import CliRunner

    from omniretrieve.cli import app

    corpus = tmp_path / "corpus.jsonl"
    lines = (datasets_dir / "cranfield" / "corpus.jsonl").read_text().splitlines()[:150]
    corpus.write_text("\n".join(lines) + "\n")
    root = str(tmp_path / "collections")
    runner = CliRunner()
    indexed = runner.invoke(app, ["index", "small", "--from", str(corpus), "--root", root])
    assert indexed.exit_code == 0, indexed.output
    weights = json.loads(indexed.stdout)["fusion"]["weights"]
    assert set(weights) == {"bm25", "dense:all-MiniLM-L6-v2"}  # one per list, named as hits name it
    shown = runner.invoke(app, ["collections", "show", "small", "--root", root])
    first = json.loads(shown.stdout)["tuning"]
    assert first["documents"] == 150 and first["seed"] == 0
    assert first["rerank"]["reranker"] == "omniretrieve-hybrid-reranker"
    assert set(first["rerank"]["grid"]) == {str(s / 10) for s in range(5, 11)}
    tuned = runner.invoke(app, ["collections", "tune", "small", "--root", root, "--seed", "1"])
    assert tuned.exit_code == 0, tuned.output
    fit = json.loads(tuned.stdout)
    assert fit["pseudo_queries"] >= 20 and len(fit["fusion_weights"]) == 2
    shown = runner.invoke(app, ["collections", "show", "small", "--root", root])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["settings"]["fusion"] == "auto" and data["documents"] == 150
    assert data["tuning"]["weights"] == fit["fusion_weights"]
    assert data["tuning"]["candidates"] and data["tuning"]["rerank"]["reranker"]
    missing = runner.invoke(app, ["collections", "show", "nope", "--root", root])
    assert missing.exit_code != 0 and "nope" in missing.output


def test_an_upsert_does_not_judge_a_reranker_that_must_embed(
    tmp_path: Path, cranfield_documents, minilm, monkeypatch
) -> None:
    """The bundled reranker over a collection without MiniLM vectors would embed 4,000
    candidates: an upsert fits the fusion only (``tune()`` judges the reranker)."""

    def no_reranker(self: Collection, model_id: str) -> Any:
        raise AssertionError(f"the upsert loaded reranker {model_id}")

    monkeypatch.setattr(Collection, "reranker", no_reranker)
    collection = Collection.create(
        "no-minilm",
        root=tmp_path,
        settings=CollectionSettings(embedders=("noise",)),
        embedders={"noise": NoiseEmbedder(minilm)},
    )
    with collection:
        collection.upsert(cranfield_documents[:150])
        tuning = collection.tuning()
        assert tuning is not None and tuning.documents == 150 and tuning.rerank is None


def test_a_reader_picks_up_a_new_fit_without_reloading(noise_collection, minilm) -> None:
    """A read-only opener sees a writer's new fit at ``refresh()``; the documents were not
    reloaded for it (the state object is the same)."""
    reader = Collection.open(
        noise_collection.name,
        root=noise_collection.directory.parent,
        read_only=True,
        embedders={"noise": NoiseEmbedder(minilm)},
    )
    with reader:
        state = reader.state()
        noise_collection.tune(seed=11, reranker="")
        assert reader.refresh() and reader.tuning().seed == 11
        assert reader.state() is state
        assert not reader.refresh()
