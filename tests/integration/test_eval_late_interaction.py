"""Evaluation of learned-sparse and multi-vector pipelines: ``multivector:<ColQwen2>`` over a
ViDoRe-style page set (SciFact pages rendered as screenshots: the pages alone, no text),
whose run is the model's own MaxSim of every query and page; and BGE-M3's ``dense:``,
``sparse:``, ``multivector:`` and ``hybrid:`` pipelines on SciFact text, each with the memory
a document takes in the fields it searches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omniretrieve import Embedder
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.eval.runner import evaluate
from omniretrieve.inputs import ImageInput
from omniretrieve.multi_vector import maxsim
from tests.builders.tiny_bge_m3 import build_tiny_bge_m3
from tests.builders.tiny_late_interaction import build_tiny_colqwen2

QUERIES = 6
DISTRACTORS = 14


def mini_page_set(source: Path, target: Path) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The first queries of scifact_pages with their pages and some others, linked (not
    copied) into ``target`` in the dataset's layout."""
    qrels: dict[str, dict[str, int]] = {}
    for line in (source / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        query, page, score = line.split("\t")
        if query in qrels or len(qrels) < QUERIES:
            qrels.setdefault(query, {})[page] = int(score)
    texts = {}
    for line in (source / "queries.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["_id"] in qrels:
            texts[record["_id"]] = record["text"]
    relevant = {page for pages in qrels.values() for page in pages}
    corpus = []
    for line in (source / "corpus.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["_id"] in relevant or len(corpus) < len(relevant) + DISTRACTORS:
            corpus.append(record)
    (target / "pages").mkdir(parents=True)
    (target / "qrels").mkdir()
    for record in corpus:
        (target / record["image"]).symlink_to(source / record["image"])
    (target / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (target / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in texts.items())
    )
    rows = [f"{q}\t{p}\t{s}" for q, pages in qrels.items() for p, s in pages.items()]
    (target / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows))
    return texts, qrels


def test_page_set_searched_by_colqwen_late_interaction(tmp_path: Path, datasets_dir: Path) -> None:
    colqwen = build_tiny_colqwen2(tmp_path / "colqwen")
    root = tmp_path / "pages-mini"
    queries, qrels = mini_page_set(datasets_dir / "scifact_pages", root)
    pipeline = f"multivector:{colqwen}"
    report = evaluate([root], [pipeline], cache_dir=tmp_path / "cache", show_progress=False)
    ours = report.result("pages-mini", "test", pipeline)
    assert not ours.skipped, ours.skipped
    embedder = Embedder(colqwen, dtype="float32")
    pages = {
        json.loads(line)["_id"]: root / json.loads(line)["image"]
        for line in (root / "corpus.jsonl").read_text().splitlines()
    }
    encoded = embedder.encode(
        [ImageInput(path.read_bytes()) for path in pages.values()],
        task="retrieval.passage",
        return_multivector=True,
    )
    assert encoded.multivectors is not None
    run = {}
    for query_id, text in queries.items():
        query = embedder.encode([text], task="retrieval.query", return_multivector=True)
        assert query.multivectors is not None
        run[query_id] = {
            page: maxsim(query.multivectors[0], vectors, "sum")
            for page, vectors in zip(pages, encoded.multivectors, strict=True)
        }
    expected = evaluate_run(qrels, run, ["ndcg@10", "recall@10"])
    assert ours.metrics["ndcg@10"] == pytest.approx(expected.mean["ndcg@10"], abs=1e-6)
    assert ours.per_query["recall@10"] == pytest.approx(expected.per_query["recall@10"])
    tokens = sum(len(m) for m in encoded.multivectors)
    dimension = encoded.multivectors[0].shape[1]
    assert ours.memory_per_document == pytest.approx(4 * tokens * dimension / len(pages))


def test_bge_m3_pipelines_each_search_their_list(tmp_path: Path, datasets_dir: Path) -> None:
    from omniretrieve.eval.report import markdown

    m3 = build_tiny_bge_m3(tmp_path / "m3")
    source = datasets_dir / "scifact"
    root = tmp_path / "scifact-mini"
    (root / "qrels").mkdir(parents=True)
    lines = (source / "qrels" / "test.tsv").read_text().splitlines()
    kept = lines[1:21]
    (root / "qrels" / "test.tsv").write_text("\n".join([lines[0], *kept]) + "\n")
    relevant = {row.split("\t")[1] for row in kept}
    wanted_queries = {row.split("\t")[0] for row in kept}
    corpus = []
    for line in (source / "corpus.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["_id"] in relevant or len(corpus) < 60:
            record["text"] = record["text"][:400]
            corpus.append(json.dumps(record))
    (root / "corpus.jsonl").write_text("\n".join(corpus) + "\n")
    queries = [
        line
        for line in (source / "queries.jsonl").read_text().splitlines()
        if json.loads(line)["_id"] in wanted_queries
    ]
    (root / "queries.jsonl").write_text("\n".join(queries) + "\n")
    pipelines = [f"{kind}:{m3}" for kind in ("dense", "sparse", "multivector", "hybrid")]
    report = evaluate([root], pipelines, cache_dir=tmp_path / "cache", show_progress=False)
    results = {p: report.result("scifact-mini", "test", p) for p in pipelines}
    for spec, result in results.items():
        assert not result.skipped and "ndcg@10" in result.metrics, (spec, result)
    memory = {p.split(":")[0]: results[p].memory_per_document for p in pipelines}
    assert memory["dense"] >= 4 * 32  # a 32-d vector per passage
    assert memory["multivector"] > 10 * memory["dense"]  # a 32-d vector per token
    assert memory["hybrid"] == pytest.approx(
        memory["dense"] + memory["sparse"] + memory["multivector"]
    )
    rankings = {p: results[p].per_query["ndcg@10"] for p in pipelines}
    assert len({json.dumps(r, sort_keys=True) for r in rankings.values()}) > 1
    assert "KB / document" in markdown(report)
