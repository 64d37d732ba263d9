"""Issue 29 over HTTP: documents listed, exported and deleted; pictures drawn from what the
collection stores (never from a path); files uploaded through the same ingest as the CLI;
the metadata values to filter on; what each stage made of a query's image."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from omniretrieve.cli import app as cli
from omniretrieve.index.collection import Collection
from omniretrieve.server.app import create_app
from omniretrieve.server.config import ServerConfig
from tests.builders.documents import text_image
from tests.builders.folders import LATIN1, user_folder
from tests.builders.servers import png_data_uri

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("collections"))


@pytest.fixture(scope="module")
def client(root: Path, server_pool):
    config = ServerConfig(collections_root=root)
    with TestClient(create_app(config, pool=server_pool(config))) as test_client:
        yield test_client


def _make(client: TestClient, name: str, documents: list[dict]) -> None:
    assert client.post("/v1/collections", json={"name": name}).status_code == 201
    client.put(f"/v1/collections/{name}/documents", json={"documents": documents})


def test_documents_are_listed_in_pages_and_exported(client: TestClient) -> None:
    documents = [{"id": f"d{n:02d}", "text": f"text number {n}"} for n in range(25)]
    _make(client, "listed", documents)
    page = client.get("/v1/collections/listed/documents?offset=20&limit=10").json()
    assert page["total"] == 25 and page["offset"] == 20
    assert [d["id"] for d in page["documents"]] == [f"d{n}" for n in range(20, 25)]
    exported = client.get("/v1/collections/listed/documents?format=jsonl&offset=3")
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert [r["id"] for r in rows] == [f"d{n:02d}" for n in range(3, 25)]
    assert rows[0]["text"] == "text number 3"
    bad = client.get("/v1/collections/listed/documents?limit=0")
    assert bad.status_code == 422 and "limit" in bad.text
    assert client.delete("/v1/collections/listed/documents/d03").status_code == 200
    assert client.get("/v1/collections/listed/documents").json()["total"] == 24


def test_pictures_are_drawn_from_what_the_collection_stores(
    client: TestClient, root: Path, tmp_path: Path
) -> None:
    folder = user_folder(tmp_path / "f")
    result = CliRunner().invoke(
        cli, ["index", "pictures", "--from", str(folder), "--root", str(root), "--no-ocr"]
    )
    assert result.exit_code == 0, result.output
    page = client.get("/v1/collections/pictures/images/docs/spec.pdf%23page=2")
    assert page.status_code == 200 and page.headers["content-type"] == "image/png"
    thumbnail = Image.open(io.BytesIO(page.content))
    assert thumbnail.width == 320 and thumbnail.height > 100
    full = Image.open(
        io.BytesIO(
            client.get("/v1/collections/pictures/images/docs/spec.pdf%23page=2?full=true").content
        )
    )
    assert full.width > 1000  # the page at 144 dpi
    again = client.get(
        "/v1/collections/pictures/images/docs/spec.pdf%23page=2",
        headers={"If-None-Match": page.headers["etag"]},
    )
    assert again.status_code == 304
    assert client.get("/v1/collections/pictures/images/notes.md").status_code == 404
    too_wide = client.get("/v1/collections/pictures/images/docs/spec.pdf%23page=2?width=5000")
    assert too_wide.status_code == 422 and "width" in too_wide.text
    # an inline image is drawn; a path is never read, even one a library user stored
    client.put(
        "/v1/collections/pictures/documents",
        json={"documents": [{"id": "inline", "text": "a blue square", "image": png_data_uri()}]},
    )
    assert client.get("/v1/collections/pictures/images/inline").status_code == 200
    secret = tmp_path / "secret.png"
    secret.write_bytes(text_image(["secret"], (200, 80)))
    client.delete("/v1/collections/pictures")
    with Collection.create("pathy", root=root) as collection:
        collection.options.image_paths = True
        collection.upsert([{"id": "p", "text": "x", "image": str(secret), "metadata": {"ocr": 1}}])
    refused = client.get("/v1/collections/pathy/images/p")
    assert refused.status_code == 404 and "path or URL" in refused.json()["error"]["message"]


@needs_tesseract
def test_uploaded_files_are_stored_as_the_cli_stores_them(
    client: TestClient, root: Path, tmp_path: Path
) -> None:
    folder = user_folder(tmp_path / "f")
    flat = tmp_path / "flat"
    flat.mkdir()
    for name in ("latin1.txt", "youtube-stream-status.png", "photo.jpg"):
        shutil.copy(folder / name, flat / name)
    shutil.copy(folder / "docs" / "spec.pdf", flat / "spec.pdf")
    result = CliRunner().invoke(cli, ["index", "bycli", "--from", str(flat), "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert client.post("/v1/collections", json={"name": "uploads"}).status_code == 201
    files = [("files", (p.name, p.read_bytes())) for p in sorted(flat.iterdir())]
    uploaded = client.post("/v1/collections/uploads/files", files=files)
    assert uploaded.status_code == 200, uploaded.text
    report = uploaded.json()
    assert report["added"] == 4 and sorted(report["documents"]) == [
        "latin1.txt", "spec.pdf#page=1", "spec.pdf#page=2", "youtube-stream-status.png"
    ]  # fmt: skip
    assert report["skipped"] == [
        {
            "path": "photo.jpg",
            "reason": "no text found in the image, and no embedder of this collection reads images",
        }
    ]

    def stored(name: str) -> dict[str, dict]:
        rows = client.get(f"/v1/collections/{name}/documents").json()["documents"]
        for row in rows:
            row["metadata"].pop("folder", None)  # where the CLI's files came from
        return {row["id"]: row for row in rows}

    assert stored("uploads") == stored("bycli")  # id, text, image, metadata, hash
    assert LATIN1 in stored("uploads")["latin1.txt"]["text"]
    found = client.post(
        "/v1/collections/uploads/search", json={"query": "youtube stream status", "top_k": 1}
    ).json()
    assert found["hits"][0]["doc_id"] == "youtube-stream-status.png"
    assert found["took_ms"] >= 0 and found["query_notes"] == {}
    bad = client.post(
        "/v1/collections/uploads/files", files=[("files", ("x.pdf", b"%PDF-1.5 broken"))]
    )
    assert bad.status_code == 200 and bad.json()["skipped"][0]["path"] == "x.pdf"
    assert "error" in bad.json()["skipped"][0]
    for body in ({"json": {"files": ["x"]}}, {"data": {"other": "x"}}):
        refused = client.post("/v1/collections/uploads/files", **body)
        assert refused.status_code == 422 and refused.json()["error"]["field"], refused.text


def test_facets_list_the_values_to_filter_on(client: TestClient) -> None:
    documents = [
        {"id": f"d{n}", "text": f"text {n}", "metadata": {"suffix": [".md", ".py"][n % 2],
                                                          "n": n, "path": f"p{n}"}}
        for n in range(6)
    ]  # fmt: skip
    _make(client, "faceted", documents)
    facets = client.get("/v1/collections/faceted/facets").json()["facets"]
    assert facets["suffix"] == [[".md", 3], [".py", 3]]
    assert "path" not in facets  # paths, titles and hashes are not facets


@needs_tesseract
def test_an_image_query_says_what_each_stage_made_of_it(client: TestClient) -> None:
    documents = [
        {"id": "penguins", "text": "Penguins huddle together to keep warm in winter."},
        {"id": "stream", "text": "The stream status page shows live video health."},
    ]
    _make(client, "asked", documents)
    image = (
        "data:image/png;base64,"
        + __import__("base64")
        .b64encode(text_image(["Penguins huddle together"], (800, 160)))
        .decode()
    )
    answer = client.post(
        "/v1/collections/asked/search", json={"query": {"text": "winter", "image": image}}
    ).json()
    assert set(answer["query_notes"]) == {"sparse", "dense:all-MiniLM-L6-v2"}
    assert all("OCR text" in note for note in answer["query_notes"].values())
    assert "Penguins huddle" in answer["query_ocr_text"]
    assert answer["hits"][0]["doc_id"] == "penguins"
    blank = (
        "data:image/png;base64,"
        + __import__("base64").b64encode(text_image([], (200, 100))).decode()
    )
    plain = client.post(
        "/v1/collections/asked/search", json={"query": {"text": "stream status", "image": blank}}
    ).json()
    assert "could not read the query image" in plain["query_notes"]["sparse"]
    assert plain["hits"][0]["doc_id"] == "stream"
