"""Images and PDFs into collections on a CPU: text layer first, OCR where needed, page numbers
kept, bad files reported while everything else is ingested."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from omniretrieve.cli import app
from omniretrieve.errors import InputError, LimitExceededError
from omniretrieve.ingest.images import image_pages
from omniretrieve.ingest.pdf import pdf_pages
from tests.builders.documents import pdf_with_pages, text_image

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)

PAGE_ONE = "Photosynthesis converts light energy into chemical energy in chloroplasts."
SCANNED = ["Volcanic eruptions release", "sulfur dioxide into the", "stratosphere every year."]
PAGE_THREE = "Glaciers carve U-shaped valleys as they slowly move downhill over centuries."


@pytest.fixture()
def pdf_file(tmp_path: Path) -> Path:
    return pdf_with_pages(tmp_path / "report.pdf", [PAGE_ONE, text_image(SCANNED), PAGE_THREE])


def test_pdf_pages_text_layer_first(pdf_file: Path) -> None:
    pages = pdf_pages(pdf_file.read_bytes())
    assert [p.number for p in pages] == [1, 2, 3]
    assert "Photosynthesis" in pages[0].text and pages[0].image is None
    assert pages[1].text == "" and pages[1].image is not None  # a scan: pixels only
    assert "Glaciers" in pages[2].text


def test_bad_pdfs_are_clear_errors(tmp_path: Path, pdf_file: Path) -> None:
    with pytest.raises(InputError, match="not a readable PDF"):
        pdf_pages(b"%PDF-1.7 this is not really a pdf")
    with pytest.raises(InputError, match="not a readable PDF"):
        pdf_pages(pdf_file.read_bytes()[:300])  # truncated
    with pytest.raises(InputError, match="encrypted"):
        pdf_pages(_encrypted_pdf(pdf_file))
    with pytest.raises(InputError, match="no pages"):
        pdf_pages(_zero_page_pdf())


def _encrypted_pdf(source: Path) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for page in PdfReader(source).pages:
        writer.add_page(page)
    writer.encrypt("secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _zero_page_pdf() -> bytes:
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def test_image_limits(tmp_path: Path) -> None:
    from PIL import Image

    good = text_image(["hello"])
    assert image_pages(good) == [good]
    with pytest.raises(InputError, match="not a readable image"):
        image_pages(good[: len(good) // 2])  # truncated
    huge = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(huge, format="PNG")  # ~50 kB, 400 Mpx
    with pytest.raises(LimitExceededError, match="decompression bomb|20000x20000"):
        image_pages(huge.getvalue())
    frames = [Image.new("L", (8, 8), i % 255) for i in range(500)]
    tiff = io.BytesIO()
    frames[0].save(tiff, format="TIFF", save_all=True, append_images=frames[1:])
    with pytest.raises(LimitExceededError, match="500 frames"):
        image_pages(tiff.getvalue())
    three = io.BytesIO()
    frames[0].save(three, format="TIFF", save_all=True, append_images=frames[1:3])
    assert len(image_pages(three.getvalue())) == 3


@needs_tesseract
@pytest.mark.slow
def test_folder_with_pdf_images_and_bad_files_round_trips(tmp_path: Path, pdf_file: Path) -> None:
    from PIL import Image

    folder = tmp_path / "docs"
    folder.mkdir()
    shutil.copy(pdf_file, folder / "report.pdf")
    (folder / "note.md").write_text("Honeybees communicate with a waggle dance.")
    (folder / "scan.png").write_bytes(text_image(["Penguins huddle together", "to keep warm."]))
    webp = io.BytesIO()
    Image.open(io.BytesIO(text_image(["Octopuses have three hearts."]))).save(webp, "WEBP")
    (folder / "fact.webp").write_bytes(webp.getvalue())
    (folder / "broken.png").write_bytes(text_image(["x"])[:200])
    (folder / "empty.pdf").write_bytes(_zero_page_pdf())
    root = tmp_path / "collections"
    runner = CliRunner()
    result = runner.invoke(app, ["index", "visual", "--from", str(folder), "--root", str(root)])
    assert result.exit_code == 2, result.output  # two bad files reported...
    report = json.loads(result.stdout.splitlines()[0])
    assert {s["path"] for s in report["skipped"]} == {"broken.png", "empty.pdf"}
    assert report["documents"] == 6  # ...and everything else is indexed
    assert "error: broken.png: " in result.stderr and "no pages" in result.stderr

    def top(query: str) -> dict:
        found = runner.invoke(
            app,
            ["search", "visual", query, "--root", str(root), "--top-k", "1", "--mode", "sparse"],
        )
        assert found.exit_code == 0, found.output
        return json.loads(found.stdout)["hits"][0]

    scanned = top("volcanic sulfur dioxide stratosphere")
    assert scanned["doc_id"] == "report.pdf#page=2"
    metadata = scanned["metadata"]
    assert {k: metadata[k] for k in ("path", "page", "pages", "suffix", "text_source", "ocr")} == {
        "path": "report.pdf", "page": 2, "pages": 3, "suffix": ".pdf", "text_source": "ocr",
        "ocr": True,
    }  # fmt: skip
    assert metadata["folder"] == str(folder.resolve()) and metadata["title"] == "report.pdf"
    layer = top("glaciers valleys")
    assert layer["doc_id"] == "report.pdf#page=3"
    assert layer["metadata"]["text_source"] == "pdf-text"
    assert top("penguins huddle")["doc_id"] == "scan.png"
    assert top("octopuses hearts")["doc_id"] == "fact.webp"
    assert top("honeybees waggle")["doc_id"] == "note.md"


@needs_tesseract
def test_eval_ocr_pipelines_on_a_page_image_set(tmp_path: Path) -> None:
    """A ViDoRe-style set built here: each page is an image of a known sentence, each query
    has one relevant page, so NDCG@5 = 1 when OCR reads the pages."""
    from omniretrieve.eval.runner import evaluate

    facts = {
        "p1": ["Honeybees communicate by dancing."],
        "p2": ["Volcanoes release sulfur dioxide."],
        "p3": ["Penguins huddle to keep warm."],
        "p4": ["Glaciers carve deep valleys."],
    }
    root = tmp_path / "pages_set"
    (root / "pages").mkdir(parents=True)
    (root / "qrels").mkdir()
    corpus = []
    for doc_id, lines in facts.items():
        (root / "pages" / f"{doc_id}.png").write_bytes(text_image(lines))
        corpus.append({"_id": doc_id, "image": f"pages/{doc_id}.png"})
    (root / "corpus.jsonl").write_text("".join(json.dumps(c) + "\n" for c in corpus))
    queries = {"q1": "how do bees communicate", "q2": "volcano gas", "q3": "penguins warm"}
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    )
    (root / "qrels" / "test.tsv").write_text("q1\tp1\t1\nq2\tp2\t1\nq3\tp3\t1\n")
    report = evaluate(
        [root], ["bm25", "ocr+bm25", "ocr+hybrid"], cache_dir=tmp_path / "c", show_progress=False
    )
    assert report.datasets[0].kind == "page-image"
    assert "ocr+" in report.result("pages_set", "test", "bm25").skipped
    assert report.result("pages_set", "test", "ocr+bm25").metrics["ndcg@5"] == 1.0
    assert report.result("pages_set", "test", "ocr+hybrid").metrics["ndcg@5"] == 1.0
    assert report.config["ocr"].startswith("tesseract")


@needs_tesseract
def test_mixed_documents_index_text_and_image(tmp_path: Path, minilm, hybrid_reranker) -> None:
    """A document with text and an image: both are searchable, the reranker sees both, and a
    re-upsert keeps the OCR text without reading the image again."""
    import base64

    from omniretrieve.index.collection import Collection

    image = (
        "data:image/png;base64,"
        + base64.b64encode(text_image(["Quarterly revenue grew", "by twelve percent"])).decode()
    )
    documents = [
        {"id": "slide", "text": "Board meeting slides", "image": image, "metadata": {"n": 1}},
        {"id": "other", "text": "Penguins huddle to keep warm in winter."},
    ]
    models = {
        "embedders": {"all-MiniLM-L6-v2": minilm},
        "rerankers": {"omniretrieve-hybrid-reranker": hybrid_reranker},
    }
    with Collection.create("mixed", root=tmp_path, **models) as collection:
        collection.upsert(documents)
        stored = collection.get("slide")
        assert "Board meeting" in stored.text and "revenue" in stored.text.lower()
        # where OCR's text starts: an image reranker reads the given text and the image
        assert stored.metadata == {"n": 1, "ocr": True, "ocr_from": len("Board meeting slides")}
        assert stored.given_text == "Board meeting slides"
        for mode in ("sparse", "dense", "hybrid"):
            assert (
                collection.search("revenue growth percent", mode=mode, top_k=1)[0].doc_id == "slide"
            )
        assert collection.search("board meeting", top_k=1, rerank=True)[0].doc_id == "slide"
        again = collection.upsert(documents)
        assert again.unchanged == 2 and collection.get("slide").text == stored.text
        collection.options.image_paths = False  # as the server opens it: no local files
        with pytest.raises(InputError, match="URL|base64"):
            collection.upsert([{"id": "x", "text": "t", "image": "/etc/hostname"}])


@needs_tesseract
def test_ocr_pipelines_embed_the_ocr_text_only(tmp_path: Path) -> None:
    """``ocr+dense:<image model>`` measures OCR: its collection holds the pages' OCR text,
    embedded as text, and no vector of the page images (those belong to ``dense:<model>``)."""
    from omniretrieve.eval.runner import evaluate
    from omniretrieve.index.collection import IMAGE_SPAN, Collection
    from tests.builders.tiny_clip import build_tiny_clip

    clip = build_tiny_clip(tmp_path / "clip")
    root = tmp_path / "pages_set"
    (root / "pages").mkdir(parents=True)
    (root / "qrels").mkdir()
    facts = {"p1": "Honeybees communicate by dancing.", "p2": "Glaciers carve deep valleys."}
    for doc_id, line in facts.items():
        (root / "pages" / f"{doc_id}.png").write_bytes(text_image([line]))
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "image": f"pages/{d}.png"}) + "\n" for d in facts)
    )
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "bees dance"}) + "\n")
    (root / "qrels" / "test.tsv").write_text("q1\tp1\t1\n")
    report = evaluate([root], [f"ocr+dense:{clip}"], cache_dir=tmp_path / "c", show_progress=False)
    assert not report.result("pages_set", "test", f"ocr+dense:{clip}").skipped
    built = tmp_path / "c" / "eval-collections"
    (name,) = Collection.names(built)
    with Collection.open(name, root=built, read_only=True) as collection:
        assert "honeybees" in collection.get("p1").text.lower()
        spans = [collection.spans(d) for d in collection.document_ids()]
    assert spans and all(s and IMAGE_SPAN not in s for s in spans), spans
