"""OCR on scifact_pages: engines compared, then the retrieval table OCR vs text.

    python benchmarks/ocr_scifact_pages.py [--compare-pages 60] [--engines tesseract rapidocr]

1. Engine comparison on the first N page images: the share of each page's SciFact words
   (title + abstract, lower-cased) that the OCR text contains, and seconds per page on one core.
   rapidocr is compared when ``rapidocr-onnxruntime`` is installed.
2. Ingest speed: all 683 pages OCR'd with a fresh cache, one worker per core (pages/s).
3. The table: NDCG@5 and NDCG@10 of ocr+bm25, ocr+dense and ocr+hybrid+rerank on the page
   images, next to bm25, dense and hybrid+rerank on SciFact's text restricted to the same 683
   documents and the same 300 queries (written as a BEIR folder in a temporary directory).
4. The modality gap of the offline reranker: its scores for each (query, relevant document)
   pair when the document is text and when it is the OCR'd page, as a histogram
   (``--out``/modality-gap.png).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from omniretrieve.eval.runner import evaluate  # noqa: E402
from omniretrieve.ocr.engines import load_engine  # noqa: E402
from omniretrieve.ocr.reader import OcrCache, OcrReader  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
PIPELINES = ["bm25", "dense", "hybrid+rerank"]


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def compare_engines(names: list[str], count: int) -> None:
    from PIL import Image

    pages = [json.loads(line) for line in open(DATASETS / "scifact_pages" / "corpus.jsonl")]
    corpus = {
        record["_id"]: record
        for record in map(json.loads, open(DATASETS / "scifact" / "corpus.jsonl"))
    }
    print("| engine | pages | SciFact words found | s/page (1 core) |")
    print("|---|---|---|---|")
    for name in names:
        try:
            engine = load_engine(name)
        except Exception as exc:  # an engine that is not installed is reported, not fatal
            print(f"| {name} | - | not available: {exc} | - |")
            continue
        found, started = [], time.perf_counter()
        for page in pages[:count]:
            text = engine.read(Image.open(DATASETS / "scifact_pages" / page["image"]))
            truth = words(corpus[page["_id"]]["title"] + " " + corpus[page["_id"]]["text"])
            seen = set(words(text))
            found.append(sum(w in seen for w in truth) / max(1, len(truth)))
        seconds = (time.perf_counter() - started) / count
        print(
            f"| {name} {engine.version} | {count} | {sum(found) / len(found):.4f} | {seconds:.2f} |"
        )


def ingest_speed(engine: str) -> None:
    pages = [json.loads(line) for line in open(DATASETS / "scifact_pages" / "corpus.jsonl")]
    images = [(DATASETS / "scifact_pages" / p["image"]).read_bytes() for p in pages]
    with tempfile.TemporaryDirectory() as cache:
        reader = OcrReader(engine, cache=OcrCache(Path(cache)))
        started = time.perf_counter()
        reader.read_many(images, show_progress=True)
        seconds = time.perf_counter() - started
    print(
        f"ingest OCR: {len(images)} pages in {seconds:.0f} s with {reader.workers} workers: "
        f"{len(images) / seconds:.2f} pages/s"
    )


def restricted_scifact(target: Path) -> Path:
    """SciFact's text for exactly the documents and queries of scifact_pages."""
    pages_dir = DATASETS / "scifact_pages"
    ids = {json.loads(line)["_id"] for line in open(pages_dir / "corpus.jsonl")}
    (target / "qrels").mkdir(parents=True)
    with open(target / "corpus.jsonl", "w") as out:
        for line in open(DATASETS / "scifact" / "corpus.jsonl"):
            if json.loads(line)["_id"] in ids:
                out.write(line)
    (target / "queries.jsonl").write_text((pages_dir / "queries.jsonl").read_text())
    (target / "qrels" / "test.tsv").write_text((pages_dir / "qrels" / "test.tsv").read_text())
    return target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--compare-pages", type=int, default=60)
    parser.add_argument("--engines", nargs="+", default=["tesseract", "rapidocr"])
    parser.add_argument("--engine", default="tesseract", help="the one used for the table")
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("ocr-results"))
    args = parser.parse_args()
    if not args.skip_compare:
        compare_engines(args.engines, args.compare_pages)
        ingest_speed(args.engine)
    with tempfile.TemporaryDirectory() as tmp:
        text = restricted_scifact(Path(tmp) / "scifact_text_683")
        report = evaluate(
            [DATASETS / "scifact_pages", text],
            [f"ocr+{p}" for p in PIPELINES] + PIPELINES,
            ocr_engine=args.engine,
            show_progress=True,
        )
    print()
    print(
        "| pipeline | pages (OCR) NDCG@5 | pages NDCG@10 | text NDCG@5 | text NDCG@10 | loss @10 |"
    )
    print("|---|---|---|---|---|---|")
    for pipeline in PIPELINES:
        ocr = report.result("scifact_pages", "test", f"ocr+{pipeline}").metrics
        plain = report.result("scifact_text_683", "test", pipeline).metrics
        loss = (plain["ndcg@10"] - ocr["ndcg@10"]) * 100
        print(
            f"| {pipeline} | {ocr['ndcg@5']:.4f} | {ocr['ndcg@10']:.4f} | {plain['ndcg@5']:.4f} "
            f"| {plain['ndcg@10']:.4f} | {loss:+.1f} pt |"
        )
    modality_gap(args.engine, args.out)


def modality_gap(engine: str, out: Path) -> None:
    import numpy as np

    from omniretrieve import Reranker
    from omniretrieve.eval.modality_gap import modality_gap_plot

    pages_dir = DATASETS / "scifact_pages"
    pages = {r["_id"]: r for r in map(json.loads, open(pages_dir / "corpus.jsonl"))}
    corpus = {r["_id"]: r for r in map(json.loads, open(DATASETS / "scifact" / "corpus.jsonl"))}
    queries = {r["_id"]: r["text"] for r in map(json.loads, open(pages_dir / "queries.jsonl"))}
    pairs = []
    for line in open(pages_dir / "qrels" / "test.tsv"):
        query_id, doc_id, *_ = line.split("\t")
        if query_id in queries and doc_id in pages:
            pairs.append((query_id, doc_id))
    reader = OcrReader(engine)
    ocr = reader.read_many([(pages_dir / pages[d]["image"]).read_bytes() for _, d in pairs])
    reranker = Reranker()
    others = [f"{d['title']} {d['text']}" for i, d in corpus.items() if i not in pages][:9]
    text_scores, page_scores = [], []
    for (query_id, doc_id), page_text in zip(pairs, ocr, strict=True):
        doc = corpus[doc_id]
        # the relevant document among the same nine distractors: as text, then as the page
        for version, scores in (
            (f"{doc['title']} {doc['text']}", text_scores),
            (page_text, page_scores),
        ):
            ranked = reranker.rerank(queries[query_id], [version, *others])
            scores.append(next(r.relevance_score for r in ranked.results if r.index == 0))
    out.mkdir(parents=True, exist_ok=True)
    path = modality_gap_plot(
        text_scores, page_scores, "omniretrieve-hybrid-reranker", out / "modality-gap.png"
    )
    print(
        f"modality gap ({len(pairs)} relevant pairs): mean score text {np.mean(text_scores):.3f}, "
        f"OCR'd page {np.mean(page_scores):.3f}; histogram in {path}"
    )


if __name__ == "__main__":
    main()
