"""The CLI as a user runs it: JSON on stdout, one-line errors and non-zero exits."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omniretrieve import __version__
from omniretrieve.cli import app
from omniretrieve.models.registry import UNREACHABLE


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def run_ok(runner: CliRunner, args: list[str], stdin: str | None = None) -> dict:
    result = runner.invoke(app, args, input=stdin)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_version(runner: CliRunner) -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"omniretrieve {__version__}"


def test_embed_arguments(runner: CliRunner) -> None:
    payload = run_ok(runner, ["embed", "hello world", "second text", "--dimensions", "64"])
    assert payload["model"] == "all-MiniLM-L6-v2"
    assert [row["index"] for row in payload["data"]] == [0, 1]
    assert len(payload["data"][0]["embedding"]) == 64
    assert payload["usage"]["total_tokens"] > 0


def test_embed_file_stdin_and_jsonl(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "texts.txt"
    source.write_text("first line\n\nsecond line\n", encoding="utf-8")
    from_file = run_ok(runner, ["embed", "--file", str(source), "--embedding-type", "ubinary"])
    assert len(from_file["data"]) == 2 and len(from_file["data"][0]["embedding"]) == 48
    from_stdin = run_ok(runner, ["embed", "--file", "-"], stdin="one\ntwo\nthree\n")
    assert len(from_stdin["data"]) == 3
    result = runner.invoke(app, ["embed", "a", "b", "--jsonl"])
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["index"] for line in lines] == [0, 1]


def test_long_text_is_truncated_and_said(runner: CliRunner) -> None:
    result = runner.invoke(app, ["embed", "word " * 20_000])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["data"][0]["truncated"] is True
    assert "truncated to 256 tokens" in result.stderr


def test_rerank(runner: CliRunner) -> None:
    payload = run_ok(
        runner,
        ["rerank", "what do cats eat", "stocks fell", "cats eat fish", "--top-n", "1"],
    )
    assert payload["results"][0]["index"] == 1
    assert payload["results"][0]["document"] == {"text": "cats eat fish"}
    assert 0.0 <= payload["results"][0]["relevance_score"] <= 1.0


def test_models_list_json(runner: CliRunner) -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    ids = {row["model_id"]: row for row in json.loads(result.stdout)}
    assert ids["all-MiniLM-L6-v2"]["dimension"] == 384
    assert ids["omniretrieve-hybrid-reranker"]["kind"] == "reranker"
    table = runner.invoke(app, ["models"])
    assert "all-MiniLM-L6-v2" in table.stdout and "sentence-encoder" in table.stdout


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["embed", ""], "input[0] is an empty text", 2),
        (["embed", "x", "--dimensions", "999"], "model's dimension 384", 2),
        (["embed", "x", "--embedding-type", "float16"], "embedding_type must be one of", 2),
        (["embed", "x", "--model", "no such model!"], "is neither a bundled model", 1),
        (["embed", "x", "--task", "nope"], "task must be one of", 2),
        (["rerank", "q", "--file", "/does/not/exist"], "no such file", 2),
        (["embed", "x", "-m", "omniretrieve-hybrid-reranker"], "not an embedder", 1),
        (["embed", "x", "--dtype", "int4"], "dtype must be one of", 2),
        (["eval", "-d", "/nowhere", "--dtype", "fp8"], "dtype must be one of", 2),
        (["search", "c", "q", "--dtype", "half"], "dtype must be one of", 2),
        (["serve", "--model-dtype", "all-MiniLM-L6-v2"], "expected MODEL=DTYPE", 2),
        (["serve", "--model-dtype", "all-MiniLM-L6-v2=int3"], "dtype must be one of", 2),
        (["serve", "--model-dtype", "other=int8"], "'other' is not served", 2),
    ],
)
def test_errors_are_one_line(runner: CliRunner, args: list[str], message: str, code: int) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == code
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_non_utf8_file(runner: CliRunner, tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    result = runner.invoke(app, ["embed", "--file", str(latin1)])
    assert result.exit_code == 2
    assert "not valid UTF-8 (byte 0xe9 at offset 3)" in result.stderr


def test_empty_stdin(runner: CliRunner) -> None:
    result = runner.invoke(app, ["embed", "--file", "-"], input="\n\n")
    assert result.exit_code == 2 and "no input" in result.stderr


def closed_local_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("offline", [True, False])
def test_uncached_hub_model_without_network(tmp_path: Path, offline: bool) -> None:
    """Offline mode, or a hub endpoint that refuses connections: one clear line, exit 1."""
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_OFFLINE": "1" if offline else "0",
        "HF_ENDPOINT": f"http://127.0.0.1:{closed_local_port()}",
        "HF_HUB_ETAG_TIMEOUT": "2",
        "HF_HUB_DOWNLOAD_TIMEOUT": "2",
    }
    for args in (["embed", "x", "--model", "BAAI/bge-code-v1"], ["models", "pull", "org/model"]):
        done = subprocess.run(
            [sys.executable, "-m", "omniretrieve.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        model = args[-1]
        assert done.returncode == 1
        assert done.stderr.strip() == f"error: {UNREACHABLE.format(model=model)}"


def test_models_lists_the_hugging_face_cache(tmp_path: Path, tiny_bert_dir: Path) -> None:
    """A checkpoint in the HF cache layout is listed with its family (read from its config)."""
    import shutil

    repo = tmp_path / "hub" / "models--someone--tiny-encoder"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_bert_dir, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "omniretrieve.cli", "models", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = {row["model_id"]: row for row in json.loads(done.stdout)}
    assert rows["someone/tiny-encoder"]["family"] == "sentence-encoder"
    assert rows["someone/tiny-encoder"]["dimension"] == 32
    assert rows["someone/tiny-encoder"]["source"] == "hf-cache"
    embedded = subprocess.run(
        [sys.executable, "-m", "omniretrieve.cli", "embed", "cat", "-m", "someone/tiny-encoder"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert embedded.returncode == 0, embedded.stderr
    assert len(json.loads(embedded.stdout)["data"][0]["embedding"]) == 32


@pytest.fixture()
def messy_folder(tmp_path: Path) -> Path:
    """Good files, a non-UTF-8 one, an over-long one, and symlinks in and out of the folder."""
    folder = tmp_path / "repo"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.py").write_text("def cats():\n    return 'cats eat fish'\n")
    (folder / "notes.md").write_text("Dogs chew bones.")
    (folder / "binary.py").write_bytes(b"print(1)\n\xff\xfe\x00garbage")
    (folder / "big.txt").write_text("long text " * 100)
    outside = tmp_path / "secret.md"
    outside.write_text("a file outside the folder")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "far.md").write_text("a folder outside")
    (folder / "link.md").symlink_to(outside)
    (folder / "linked_dir").symlink_to(tmp_path / "elsewhere")
    (folder / "sub" / "inner.md").symlink_to(folder / "notes.md")  # stays inside
    return folder


def test_folder_ingest_skips_what_it_cannot_read_and_indexes_the_rest(
    runner: CliRunner, messy_folder: Path, tmp_path: Path
) -> None:
    root = tmp_path / "collections"
    args = ["index", "messy", "--from", str(messy_folder), "--root", str(root)]
    result = runner.invoke(app, [*args, "--max-chars", "500"])
    assert result.exit_code == 2, result.output
    payload = json.loads(result.stdout)
    skipped = {item["path"]: item["error"] for item in payload["skipped"]}
    assert "offset 9" in skipped["binary.py"] and "UTF-8" in skipped["binary.py"]
    assert "1000 characters" in skipped["big.txt"] and "500" in skipped["big.txt"]
    assert "outside the folder" in skipped["link.md"]
    assert "outside the folder" in skipped["linked_dir"]
    listed = run_ok(runner, ["search", "messy", "cats", "--root", str(root), "-k", "10"])
    ids = {hit["doc_id"] for hit in listed["hits"]}
    assert "good.py" in ids and "link.md" not in ids
    assert payload["documents"] == 3  # good.py, notes.md, sub/inner.md
    followed = runner.invoke(app, [*args, "--follow-symlinks", "--max-chars", "2000"])
    assert followed.exit_code == 2  # binary.py is still unreadable
    payload = json.loads(followed.stdout)
    assert payload["documents"] == 6  # + big.txt, link.md, linked_dir/far.md
    assert [item["path"] for item in payload["skipped"]] == ["binary.py"]


def test_cli_search_of_empty_and_damaged_collections(runner: CliRunner, tmp_path: Path) -> None:
    from omniretrieve.index.collection import Collection, CollectionSettings

    root = tmp_path / "collections"
    writer = Collection.create("fresh", root=root, settings=CollectionSettings(embedders=()))
    result = runner.invoke(app, ["search", "fresh", "anything", "--root", str(root)])
    assert result.exit_code == 0, result.output  # beside a writer that acknowledged nothing
    assert json.loads(result.stdout)["hits"] == []
    writer.upsert([{"id": f"d{i}", "text": f"text number {i}"} for i in range(6)])
    writer.flush()
    writer.close()
    snapshot = root / "fresh" / (root / "fresh" / "CURRENT").read_text().strip()
    documents = snapshot / "documents.jsonl"
    documents.write_bytes(b"".join(documents.read_bytes().splitlines(keepends=True)[:3]))
    for args in (["search", "fresh", "text"], ["index", "fresh", "--from", str(documents)]):
        damaged = runner.invoke(app, [*args, "--root", str(root)])
        assert damaged.exit_code == 1, damaged.output
        assert "documents.jsonl" in damaged.stderr and "Traceback" not in damaged.output
    assert len(documents.read_bytes().splitlines()) == 3  # nothing compacted over it


def test_cli_search_with_an_image_query(runner: CliRunner, tmp_path: Path) -> None:
    import base64

    from omniretrieve import Embedder
    from omniretrieve.index.collection import Collection, CollectionSettings
    from tests.builders.tiny_clip import build_tiny_clip, png_bytes

    clip = build_tiny_clip(tmp_path / "clip")
    root = tmp_path / "collections"
    colors = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    settings = CollectionSettings(embedders=(str(clip),), ocr_images=False)
    with Collection.create(
        "pics", root=root, settings=settings, embedders={str(clip): Embedder(clip)}
    ) as collection:
        collection.upsert(
            [
                {"id": name, "image": base64.b64encode(png_bytes(color, (64, 56))).decode()}
                for name, color in colors.items()
            ]
        )
    query = tmp_path / "query.png"
    query.write_bytes(png_bytes(colors["green"], (64, 56)))
    body = run_ok(
        runner,
        ["search", "pics", "--query-image", str(query), "--root", str(root), "--mode", "dense"],
    )
    assert body["hits"][0]["doc_id"] == "green"  # the same pixels: cosine 1
    assert body["query"] == {"text": None, "image": str(query)}
    missing = runner.invoke(app, ["search", "pics", "--root", str(root)])
    assert missing.exit_code != 0 and "--query-image" in missing.output
    text_only = runner.invoke(
        app,
        ["search", "pics", "--query-image", str(query), "--root", str(root), "--mode", "sparse"],
    )
    assert text_only.exit_code != 0 and "image without text" in text_only.output


def test_index_reports_progress_into_a_log_file(tmp_path: Path) -> None:
    """``omniretrieve index`` with stderr redirected to a file (not a terminal) writes plain
    progress lines during the run, not nothing."""
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"_id": str(i), "text": f"document number {i} about topic {i % 7}"}) + "\n"
            for i in range(300)
        )
    )
    log = tmp_path / "index.log"
    with log.open("w") as stderr:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "omniretrieve.cli",
                "index",
                "logged",
                "--from",
                str(corpus),
                "--root",
                str(tmp_path / "collections"),
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "OMNIRETRIEVE_PROGRESS_SECONDS": "0", "HF_HUB_OFFLINE": "1"},
            timeout=300,
        )
    assert done.returncode == 0, log.read_text()
    lines = [line for line in log.read_text().splitlines() if line.startswith("indexing logged")]
    assert len(lines) >= 2, lines  # progress measures characters embedded, not documents
    assert " chars/" in lines[0] and "(100%)" in lines[-1], lines
