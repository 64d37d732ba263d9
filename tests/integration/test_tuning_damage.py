"""A damaged ``tuning.json`` never breaks its collection (issue 28, item 3): each of the
damage variants opens (for writing and read-only), warns naming the file, searches with equal
weights (hybrid, with and without the reranker; results that serialise), and leaves the file
as it was; the CLI answers without a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from omniretrieve.index.collection import Collection, CollectionSettings
from omniretrieve.models.registry import DEFAULT_EMBEDDER, DEFAULT_RERANKER
from tests.builders.collections import DOCS
from tests.builders.tuning_damage import TUNING_DAMAGES, valid_tuning

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tuned_root(tmp_path_factory: pytest.TempPathFactory, minilm, hybrid_reranker) -> Path:
    """A collection with a valid fit that changes its answers (weights and reranker mix)."""
    root = tmp_path_factory.mktemp("tuned")
    settings = CollectionSettings(embedders=(DEFAULT_EMBEDDER,))
    models = {"embedders": {DEFAULT_EMBEDDER: minilm}}
    with Collection.create("t", root=root, settings=settings, **models) as collection:
        collection.options.auto_tune = False
        collection.upsert(DOCS)
        collection.flush()
        collection.save_tuning(valid_tuning(DEFAULT_EMBEDDER, DEFAULT_RERANKER))
    return root


def searches(collection: Collection) -> list[list[tuple[str, float]]]:
    answers = []
    for rerank in (False, True):
        hits = collection.search("cats and fish", top_k=4, mode="hybrid", rerank=rerank)
        json.dumps([h.to_json() for h in hits], allow_nan=False)  # serialises, all finite
        answers.append([(h.doc_id, round(h.score, 6)) for h in hits])
    return answers


@pytest.fixture(scope="module")
def equal_weights_answers(tuned_root: Path, minilm, hybrid_reranker) -> list:
    """The answers without any fit: what every damaged file must fall back to."""
    copy = tuned_root.parent / "untuned"
    shutil.copytree(tuned_root, copy)
    (copy / "t" / "tuning.json").unlink()
    models = {
        "embedders": {DEFAULT_EMBEDDER: minilm},
        "rerankers": {DEFAULT_RERANKER: hybrid_reranker},
    }
    with Collection.open("t", root=copy, **models) as collection:
        assert collection.tuning() is None
        return searches(collection)


def test_the_valid_fit_changes_the_answers(
    tuned_root, minilm, hybrid_reranker, equal_weights_answers
):
    """Otherwise falling back to equal weights could not be told from using the fit."""
    models = {
        "embedders": {DEFAULT_EMBEDDER: minilm},
        "rerankers": {DEFAULT_RERANKER: hybrid_reranker},
    }
    with Collection.open("t", root=tuned_root, read_only=True, **models) as collection:
        assert collection.tuning() is not None
        assert searches(collection) != equal_weights_answers


@pytest.mark.parametrize("damage", sorted(TUNING_DAMAGES))
def test_a_damaged_fit_warns_and_searches_with_equal_weights(
    tmp_path: Path, tuned_root: Path, minilm, hybrid_reranker, equal_weights_answers, damage
) -> None:
    root = tmp_path / "root"
    shutil.copytree(tuned_root, root)
    path = root / "t" / "tuning.json"
    path.write_bytes(TUNING_DAMAGES[damage](path.read_bytes()))
    damaged = path.read_bytes()
    models = {
        "embedders": {DEFAULT_EMBEDDER: minilm},
        "rerankers": {DEFAULT_RERANKER: hybrid_reranker},
    }
    for read_only in (False, True):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Collection.open("t", root=root, read_only=read_only, **models) as collection:
                assert collection.tuning() is None
                assert searches(collection) == equal_weights_answers
        assert any(str(path) in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert path.read_bytes() == damaged  # kept for inspection


@pytest.mark.slow
def test_the_cli_searches_a_collection_with_a_damaged_fit(tmp_path: Path, tuned_root: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(tuned_root, root)
    path = root / "t" / "tuning.json"
    valid = path.read_bytes()
    for damage in ("file nested 100k deep", "method null", "weights NaN"):
        path.write_bytes(TUNING_DAMAGES[damage](valid))
        command = ["search", "t", "cats", "--root", str(root), "--rerank"]
        done = subprocess.run(
            [sys.executable, "-m", "omniretrieve.cli", *command],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr and "tuning.json" in done.stderr, done.stderr
        assert json.loads(done.stdout)["hits"], done.stdout
