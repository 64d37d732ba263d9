"""Issue 29: a real folder, end to end through the CLI: every kind of file ingested alike,
the collection kept equal to the folder (delete, rename, modify; ``--watch``; a crash in the
middle), documents listed and deleted."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from omniretrieve.cli import app
from omniretrieve.index.collection import Collection
from tests.builders.folders import KOI8, LATIN1, user_folder

ROOT = Path(__file__).resolve().parents[2]
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)


def index(root: Path, name: str, source: Path, *extra: str, code: int = 0) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["index", name, "--from", str(source), "--root", str(root), *extra]
    )
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return json.loads(result.stdout.splitlines()[-1])


class Vectors:
    """Stored vectors compared as a fresh index's: equal to float32 rounding (a batch's
    padding moves the last bits)."""

    def __init__(self, array: Any) -> None:
        self.array = np.asarray(array)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vectors)
            and self.array.shape == other.array.shape
            and bool(np.allclose(self.array, other.array, atol=1e-5))
        )

    def __repr__(self) -> str:
        return f"Vectors{self.array.shape}"


def contents(root: Path, name: str) -> dict[str, tuple[Any, ...]]:
    """Per document: text, image, metadata, spans and stored vectors (what a fresh index of
    the folder must equal)."""
    with Collection.open(name, root=root, read_only=True) as collection:
        return {
            d.doc_id: (
                d.text,
                d.image,
                d.metadata,
                collection.spans(d.doc_id),
                Vectors(collection.vectors(d.doc_id)),
            )
            for d in collection.iter_documents()
        }


def search_top(root: Path, name: str, query: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["search", name, query, "--root", str(root), "-k", "1", "--mode", "sparse"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["hits"][0]


@needs_tesseract
def test_every_kind_of_file_is_ingested_as_a_user_expects(tmp_path: Path) -> None:
    folder = user_folder(tmp_path / "f", with_scan=True)
    root = tmp_path / "collections"
    report = index(root, "f", folder)  # nothing is wrong: exit code 0
    assert report["skipped"] == [
        {"path": "empty.txt", "reason": "no text in the file: nothing to index"},
        {
            "path": "photo.jpg",
            "reason": "no text found in the image, and no embedder of this collection reads images",
        },
    ]
    assert report["documents"] == 9 and report["removed"] == 0
    latin = search_top(root, "f", "crème brûlée pâtisserie")
    assert latin["doc_id"] == "latin1.txt" and LATIN1 in latin["text"]
    assert latin["metadata"]["encoding"] == "cp1252"
    russian = search_top(root, "f", "булок чаю")
    assert russian["doc_id"] == "russian.txt" and KOI8 in russian["text"]
    assert "Grüße aus Köln" in search_top(root, "f", "Grüße Köln")["text"]  # PEP 263
    html = search_top(root, "f", "moon gravity oceans")
    assert html["doc_id"] == "docs/page.html"
    assert "<" not in html["text"] and "&#13;" not in html["text"]
    assert "Tides rise twice a day." in html["text"]
    named = search_top(root, "f", "youtube stream status")  # the file name is searched
    assert named["doc_id"] == "youtube-stream-status.png"
    assert named["metadata"]["title"] == "youtube-stream-status.png"
    scanned = search_top(root, "f", "volcanic eruptions sulfur")
    assert scanned["doc_id"] == "docs/spec.pdf#page=3"
    with Collection.open("f", root=root, read_only=True) as collection:
        page = collection.get("docs/spec.pdf#page=1")
        assert page is not None and page.image is not None
        assert page.image.startswith("stored:") and page.image.endswith(".pdf#page=1")
        assert collection.document_image(page)[:8] == b"\x89PNG\r\n\x1a\n"  # the page drawn
    stored = sorted(p.suffix for p in (root / "f" / "files").iterdir())
    assert stored == [".pdf", ".png"]  # the skipped photo is not kept


def test_an_empty_corpus_document_is_skipped_not_fatal(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    lines = [
        {"_id": "a", "title": "", "text": "Aerodynamic heating of a flat plate."},
        {"_id": "empty", "title": "", "text": ""},
        {"_id": "b", "title": "Boundary layers", "text": "Transition in boundary layers."},
    ]
    corpus.write_text("".join(json.dumps(line) + "\n" for line in lines))
    root = tmp_path / "collections"
    report = index(root, "cran", corpus)
    assert report["documents"] == 2 and report["added"] == 2
    assert report["skipped"] == [{"path": "empty", "reason": "no text and no image: not indexed"}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"_id": "x", "text": 3}) + "\n")
    result = CliRunner().invoke(app, ["index", "other", "--from", str(bad), "--root", str(root)])
    assert result.exit_code == 2 and "documents[0].text" in result.output
    assert "other" not in Collection.names(root)  # nothing half-made is left behind


def _edit(folder: Path) -> None:
    """Delete, rename and modify files."""
    (folder / "notes.md").unlink()
    (folder / "russian.txt").rename(folder / "docs" / "moved.txt")
    (folder / "latin1.txt").write_bytes("Tarte tatin et crêpes, à la française.".encode("latin-1"))
    (folder / "added.md").write_text("Octopuses have three hearts and blue blood.")


def test_a_synced_folder_equals_a_fresh_index_of_it(tmp_path: Path) -> None:
    folder = user_folder(tmp_path / "f")
    root, fresh_root = tmp_path / "synced", tmp_path / "fresh"
    index(root, "f", folder, "--no-ocr")
    _edit(folder)
    report = index(root, "f", folder, "--no-ocr")
    assert report["removed"] == 2  # notes.md, russian.txt (now docs/moved.txt)
    assert report["added"] == 2 and report["updated"] == 1  # moved.txt, added.md; latin1.txt
    assert report["unchanged"] >= 3
    index(fresh_root, "f", folder, "--no-ocr")
    assert contents(root, "f") == contents(fresh_root, "f")
    assert search_top(root, "f", "octopuses hearts")["doc_id"] == "added.md"
    # --keep-missing keeps the documents of files that went away
    (folder / "added.md").unlink()
    kept = index(root, "f", folder, "--no-ocr", "--keep-missing")
    assert kept["removed"] == 0 and "added.md" in contents(root, "f")
    assert index(root, "f", folder, "--no-ocr")["removed"] == 1


def test_documents_are_listed_exported_and_deleted_from_the_cli(tmp_path: Path) -> None:
    folder = user_folder(tmp_path / "f")
    root = tmp_path / "collections"
    index(root, "f", folder, "--no-ocr")
    runner = CliRunner()
    listed = runner.invoke(
        app, ["collections", "documents", "f", "--root", str(root), "--limit", "2", "--offset", "1"]
    )
    assert listed.exit_code == 0, listed.output
    page = json.loads(listed.stdout)
    everything = sorted(contents(root, "f"))
    assert (
        page["total"] == len(everything)
        and [d["id"] for d in page["documents"]] == (everything[1:3])
    )
    exported = runner.invoke(app, ["collections", "documents", "f", "--root", str(root), "--jsonl"])
    assert [json.loads(line)["id"] for line in exported.stdout.splitlines()] == everything
    deleted = runner.invoke(
        app, ["collections", "delete", "f", "notes.md", "no-such-id", "--root", str(root)]
    )
    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.stdout) == {
        "collection": "f",
        "deleted": 1,
        "missing": ["no-such-id"],
    }
    assert "notes.md" not in contents(root, "f")


def _wait_for(check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception:  # the writer is mid-write: try again
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("not in sync within the time allowed")
        time.sleep(0.5)


def test_watch_keeps_the_collection_in_sync(tmp_path: Path) -> None:
    folder = user_folder(tmp_path / "f")
    root, fresh_root = tmp_path / "watched", tmp_path / "fresh"
    args = ["index", "w", "--from", str(folder), "--root", str(root), "--no-ocr", "--watch"]
    child = subprocess.Popen(
        [sys.executable, "-m", "omniretrieve.cli", *args, "--debounce-ms", "300"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        assert child.stdout is not None
        first = json.loads(child.stdout.readline())  # the first sync is done
        assert first["documents"] == 7  # no OCR: the PNG and the photo are skipped
        _edit(folder)
        index(fresh_root, "w", folder, "--no-ocr")
        expected = contents(fresh_root, "w")
        _wait_for(lambda: contents(root, "w") == expected)
        child.send_signal(signal.SIGINT)
        _, errors = child.communicate(timeout=60)
        assert child.returncode == 0, errors
        assert "Traceback" not in errors
    finally:
        if child.poll() is None:
            child.kill()
    assert contents(root, "w") == expected  # what the watcher acknowledged is all there


def test_a_sync_killed_midway_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """SIGKILL while a large folder is being indexed: what is there after is exactly what a
    fresh index holds for those ids (nothing half-written), and the next sync completes it."""
    folder = tmp_path / "many"
    folder.mkdir()
    for number in range(900):
        words = " ".join(f"w{(number * 7 + k) % 997}" for k in range(60))
        (folder / f"doc{number:04d}.md").write_text(f"Document {number}. {words}\n")
    root, fresh_root = tmp_path / "crashed", tmp_path / "fresh"
    child = subprocess.Popen(
        [sys.executable, "-m", "omniretrieve.cli", "index", "m", "--from", str(folder)]
        + ["--root", str(root)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    wal = root / "m" / "wal.jsonl"
    _wait_for(lambda: wal.is_file() and wal.stat().st_size > 0, timeout=120)
    child.kill()
    child.wait()
    index(fresh_root, "m", folder)
    expected = contents(fresh_root, "m")
    survived = contents(root, "m")
    assert 0 < len(survived) < len(expected)  # killed in the middle
    assert all(survived[d] == expected[d] for d in survived)
    index(root, "m", folder)
    assert contents(root, "m") == expected


def test_stored_files_no_document_names_are_removed(tmp_path: Path) -> None:
    from tests.builders.documents import pdf_with_pages

    folder = user_folder(tmp_path / "f")
    root = tmp_path / "collections"
    index(root, "f", folder, "--no-ocr")
    stored = root / "f" / "files"
    before = {p.name for p in stored.iterdir()}
    assert [n[-4:] for n in before] == [".pdf"]  # no OCR: the PDF alone is kept
    pdf_with_pages(folder / "docs" / "spec.pdf", ["Comets grow tails near the Sun."])
    assert index(root, "f", folder, "--no-ocr")["removed"] == 1  # the second page
    with Collection.open("f", root=root):  # a writer's open sweeps what no document names
        after = {p.name for p in stored.iterdir()}
    assert len(after) == 1 and not after & before


@needs_tesseract
def test_an_image_query_with_text_is_not_dropped_silently(tmp_path: Path) -> None:
    """Issue 29, item 4: with text-only models, the image's OCR text joins the query, and the
    answer (and stderr) says so per stage."""
    from tests.builders.documents import text_image

    folder = user_folder(tmp_path / "f")
    root = tmp_path / "collections"
    index(root, "f", folder)
    picture = tmp_path / "query.png"
    picture.write_bytes(text_image(["au lait, celebre a Paris"], (900, 160)))
    result = CliRunner().invoke(
        app,
        ["search", "f", "stream", "--query-image", str(picture), "--root", str(root), "-k", "3"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert set(payload["query_notes"]) == {"sparse", "dense:all-MiniLM-L6-v2"}
    assert "Paris" in payload["query_ocr_text"]
    assert "latin1.txt" in [h["doc_id"] for h in payload["hits"]]  # found through the image
    assert "note: sparse reads text only: read the query image's OCR text" in result.stderr
