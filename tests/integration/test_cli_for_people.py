"""The CLI as people use it (issue 30): a readable table on a terminal, "did you mean",
strict filters, nothing left behind by a model that does not load, a drop that asks, and a
running server asked instead of loading models (``--server``), with a lock error that names
the server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omniretrieve.cli import app
from tests.builders.folders import user_folder
from tests.builders.servers import ServeProcess, serve_process

LONG = " ".join(f"Filler sentence number {i} about nothing in particular." for i in range(200))
GIRAFFES = (
    "Giraffes sleep less than two hours a day. A giraffe sleeps standing up, in naps of a few "
    "minutes, and giraffes rarely lie down to sleep because lions hunt them at night. Young "
    "giraffes sleep more than adult giraffes do. "
) * 3


def write_notes(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "field-notes.md").write_text(f"# Field notes\n{LONG}\n{GIRAFFES}\n{LONG}\n")
    (folder / "tides.md").write_text("# Tides\nThe Moon's gravity pulls the oceans twice a day.")
    (folder / "mixed.md").write_text("# Bread\nBakers knead the dough before it rises.")
    return folder


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Collections: ``mixed`` indexed from a folder by the CLI."""
    base = tmp_path_factory.mktemp("people")
    collections = base / "collections"
    notes = write_notes(base / "notes")
    result = CliRunner().invoke(
        app, ["index", "mixed", "--from", str(notes), "--root", str(collections)]
    )
    assert result.exit_code == 0, result.output
    return collections


def invoke(*args: str, env: dict[str, str] | None = None) -> object:
    return CliRunner().invoke(app, list(args), env=env)


def test_search_prints_a_readable_table(root: Path) -> None:
    result = invoke(
        "search",
        "mixed",
        "how long do giraffes sleep",
        "--root",
        str(root),
        "--format",
        "table",
        env={"COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    flat = " ".join(re.sub("[│┃]", " ", out).split())  # a cell's lines, read in order
    assert "field-notes.md" in out and "Giraffes sleep less than two hours" in flat
    assert "…" in out  # the best passage, cut, not the whole 20 KB document
    assert len(out) < 4000 and "Filler sentence number 150" not in out
    assert "hit(s) in" in out  # the count and the time
    as_json = json.loads(invoke("search", "mixed", "giraffes", "--root", str(root)).stdout)
    assert as_json["hits"][0]["doc_id"] == "field-notes.md"  # not a terminal: JSON, as before


def test_did_you_mean_for_collections_and_models(root: Path) -> None:
    result = invoke("search", "mixd", "x", "--root", str(root))
    assert result.exit_code == 1
    assert "collection 'mixd' does not exist; did you mean 'mixed'?" in result.stderr
    bad = invoke("index", "new", "--from", str(root / "nowhere"), "--root", str(root))
    assert bad.exit_code == 2 and "no such file or folder" in bad.stderr


def test_a_filter_that_is_not_json_is_an_error(root: Path) -> None:
    result = invoke("search", "mixed", "bread", "--root", str(root), "--filter", 'suffix=[".md"')
    assert result.exit_code == 2
    assert "--filter 'suffix=[\".md\"': the value is not valid JSON" in result.stderr
    ok = invoke("search", "mixed", "bread", "--root", str(root), "--filter", 'suffix=[".md"]')
    assert ok.exit_code == 0 and json.loads(ok.stdout)["hits"]


def test_a_model_that_does_not_load_leaves_no_collection(root: Path, tmp_path: Path) -> None:
    notes = write_notes(tmp_path / "n")
    result = invoke(
        "index",
        "broken",
        "--from",
        str(notes),
        "--root",
        str(root),
        "-e",
        "all-MiniLM-L6",
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert result.exit_code != 0
    assert "did you mean 'all-MiniLM-L6-v2'?" in result.stderr
    assert "broken" not in json.loads(invoke("collections", "--root", str(root)).stdout)


def test_drop_asks_unless_yes(tmp_path: Path) -> None:
    notes = write_notes(tmp_path / "n")
    collections = tmp_path / "c"
    assert invoke("index", "gone", "--from", str(notes), "--root", str(collections)).exit_code == 0
    asked = CliRunner().invoke(app, ["collections", "drop", "gone", "--root", str(collections)])
    assert asked.exit_code == 2 and "pass --yes" in asked.stderr  # no terminal to ask on
    kept = json.loads(invoke("collections", "--root", str(collections)).stdout)
    assert kept == ["gone"]
    dropped = invoke("collections", "drop", "gone", "--yes", "--root", str(collections))
    assert dropped.exit_code == 0
    assert json.loads(invoke("collections", "--root", str(collections)).stdout) == []


@pytest.fixture(scope="module")
def served(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    data = str(tmp_path_factory.mktemp("serve-data"))
    with serve_process("--collections-root", str(root), data_dir=data) as process:
        # the server opens a collection when it is first used
        invoke("search", "mixed", "warm", "--server", process.base, "--format", "json")
        yield process


def test_search_through_the_server_equals_the_local_search(
    root: Path, served: ServeProcess
) -> None:
    for query in ("how long do giraffes sleep", "moon gravity oceans", "bread dough"):
        local = json.loads(invoke("search", "mixed", query, "--root", str(root)).stdout)
        remote_run = invoke("search", "mixed", query, env={"OMNIRETRIEVE_SERVER": served.base})
        assert remote_run.exit_code == 0, remote_run.output
        remote = json.loads(remote_run.stdout)
        assert [h["doc_id"] for h in remote["hits"]] == [h["doc_id"] for h in local["hits"]]
        for ours, theirs in zip(local["hits"], remote["hits"], strict=True):
            assert ours["score"] == pytest.approx(theirs["score"], abs=1e-4)
        assert remote["server"] == served.base
    missing = invoke("search", "mixd", "x", "--server", served.base)
    assert missing.exit_code == 2 and "did you mean 'mixed'?" in missing.stderr


def test_a_collection_the_server_holds_names_it(
    root: Path, served: ServeProcess, tmp_path: Path
) -> None:
    notes = write_notes(tmp_path / "n")
    refused = invoke("index", "mixed", "--from", str(notes), "--root", str(root))
    assert refused.exit_code == 1
    assert f"held by the server at {served.base}" in refused.stderr
    assert f"--server {served.base}" in refused.stderr


def test_index_through_the_server_as_a_local_index(
    root: Path, served: ServeProcess, tmp_path: Path
) -> None:
    folder = user_folder(tmp_path / "f")
    sent = invoke("index", "remote", "--from", str(folder), "--server", served.base)
    assert sent.exit_code == 0, sent.output
    report = json.loads(sent.stdout)
    local_root = tmp_path / "local"
    here = invoke("index", "local", "--from", str(folder), "--root", str(local_root))
    assert here.exit_code == 0, here.output
    expected = json.loads(here.stdout)
    assert report["documents"] == expected["documents"] and report["server"] == served.base
    assert sorted(s["path"] for s in report["skipped"]) == sorted(
        s["path"] for s in expected["skipped"]
    )

    def documents(name: str, where: Path) -> dict[str, str]:
        listed = invoke("collections", "documents", name, "--jsonl", "--root", str(where))
        rows = [json.loads(line) for line in listed.stdout.splitlines()]
        return {row["id"]: row["text"] for row in rows}

    assert documents("remote", root) == documents("local", local_root)  # docs/page.html...


def test_help_wraps_at_the_terminal_not_mid_sentence() -> None:
    wide = invoke("index", "--help", env={"COLUMNS": "200"})
    assert (
        "(text, Markdown, HTML, code, images, PDFs; each file's encoding is detected)"
        in wide.stdout
    )
    groups = invoke("collections", "--help", env={"COLUMNS": "200"}).stdout
    assert "list or delete its documents" in groups


def test_a_corpus_through_the_server(served: ServeProcess, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    rows = [
        {"_id": "d1", "title": "Cats", "text": "Cats eat fish."},
        {"_id": "d2", "title": "", "text": ""},  # empty, as in BEIR's Cranfield: skipped
        {"_id": "d3", "text": "Paris is the capital of France."},
    ]
    corpus.write_text("".join(json.dumps(row) + "\n" for row in rows))
    sent = invoke("index", "corpus", "--from", str(corpus), "--server", served.base)
    assert sent.exit_code == 0, sent.output
    report = json.loads(sent.stdout)
    assert (report["documents"], report["added"]) == (2, 2)
    assert report["skipped"] == [{"path": "d2", "reason": "no text and no image: not indexed"}]
    found = invoke("search", "corpus", "capital of France", "--server", served.base, "-k", "1")
    assert json.loads(found.stdout)["hits"][0]["doc_id"] == "d3"
