"""Evaluation at the depth and with the metrics asked for, and runs written in TREC format
that trec_eval's own implementation (pytrec_eval, called directly) scores the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniretrieve.errors import InputError
from omniretrieve.eval.datasets import load_qrels
from omniretrieve.eval.metrics import read_trec_run
from omniretrieve.eval.runner import evaluate
from tests.conftest import CACHE_DIR

pytestmark = pytest.mark.slow

PIPELINES = ["bm25", "dense", "hybrid"]


@pytest.fixture(scope="module")
def scifact_runs(datasets_dir: Path, minilm, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    report = evaluate(
        [datasets_dir / "scifact"],
        PIPELINES,
        cache_dir=CACHE_DIR,
        embedders={"all-MiniLM-L6-v2": minilm},
        out_dir=out,
        metrics=["ndcg@10", "recall@100"],
        show_progress=False,
    )
    return report, out


def test_run_files_rescore_to_the_reported_numbers(scifact_runs, datasets_dir: Path) -> None:
    import pytrec_eval

    report, out = scifact_runs
    qrels = load_qrels(datasets_dir / "scifact" / "qrels" / "test.tsv")
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"})
    table = {}
    for pipeline in PIPELINES:
        run = read_trec_run(out / "runs" / "scifact" / "test" / f"{pipeline}.trec")
        assert max(len(docs) for docs in run.values()) == 100  # the depth recall@100 needs
        scores = evaluator.evaluate(run)
        result = report.result("scifact", "test", pipeline)
        for trec, ours in (("ndcg_cut_10", "ndcg@10"), ("recall_100", "recall@100")):
            # judged queries the run lacks count 0, as in the report
            mean = sum(scores.get(q, {}).get(trec, 0.0) for q in qrels) / len(qrels)
            assert mean == pytest.approx(result.metrics[ours], abs=1e-9), (pipeline, ours)
        table[pipeline] = (result.metrics["ndcg@10"], result.metrics["recall@100"])
    print(table)
    assert table["hybrid"][1] > max(table["bm25"][1], table["dense"][1])
    assert "scifact recall@100" in (out / "report.md").read_text()
    assert report.config["search_depth"] == 100


def test_wrong_metrics_and_depths_are_refused(datasets_dir: Path) -> None:
    with pytest.raises(InputError, match="unknown metric") as wrong:
        evaluate([datasets_dir / "scifact"], ["bm25"], metrics=["ndgc@10"], show_progress=False)
    assert wrong.value.field == "metrics"
    with pytest.raises(InputError, match="depth") as shallow:
        evaluate([datasets_dir / "scifact"], ["bm25"], depth=0, show_progress=False)
    assert shallow.value.field == "depth"


def test_empty_documents_are_counted_and_named(tmp_path: Path) -> None:
    """A corpus line with no text is not indexed; the report says how many were, and which
    were left out (Cranfield has two such)."""
    import json

    corpus = [
        {"_id": "a", "title": "", "text": "Cats eat fish and mice."},
        {"_id": "b", "title": "", "text": "   "},
        {"_id": "c", "title": "Stocks", "text": "The market fell on Monday."},
    ]
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus) + "\n")
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "cats"}) + "\n")
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\ta\t1\n")
    out = tmp_path / "out"
    report = evaluate([tmp_path], ["bm25"], out_dir=out, cache_dir=tmp_path / "cache",
                      show_progress=False)  # fmt: skip
    described = report.config["datasets"][0]
    assert (described["documents"], described["indexed"]) == (3, 2)
    assert described["empty_documents"] == ["b"]
    assert "3 documents, 2 indexed (1 empty, not indexed: b)" in (out / "report.md").read_text()
    assert read_trec_run(out / "runs" / tmp_path.name / "test" / "bm25.trec")["q"]["a"] > 0


def test_reranking_a_supplied_run_equals_reranking_our_own_first_stage(
    scifact_runs, datasets_dir: Path, minilm, tmp_path: Path
) -> None:
    """``--rerank-run bm25.trec -p rerank`` reranks the run file's top 100 exactly as
    ``bm25+rerank`` reranks BM25's own (same candidates, same reranker and mix)."""
    _, out = scifact_runs
    run_file = out / "runs" / "scifact" / "test" / "bm25.trec"
    report = evaluate(
        [datasets_dir / "scifact"],
        ["dense", "bm25+rerank", "rerank"],  # dense: the collection holds MiniLM's vectors
        cache_dir=CACHE_DIR,
        embedders={"all-MiniLM-L6-v2": minilm},
        out_dir=tmp_path,
        rerank_run=run_file,
        max_queries=60,
        show_progress=False,
    )
    ours = report.result("scifact", "test", "bm25+rerank")
    supplied = report.result("scifact", "test", "rerank")
    assert supplied.per_query == ours.per_query
    runs = tmp_path / "runs" / "scifact" / "test"
    reranked_ours = read_trec_run(runs / "bm25+rerank.trec")
    reranked_supplied = read_trec_run(runs / "rerank.trec")
    for query_id, docs in reranked_ours.items():
        assert list(reranked_supplied[query_id])[:20] == list(docs)[:20], query_id
    described = report.config["rerank_run"]
    assert described["deepest"] == 100 and described["unknown_documents"] == 0
    with pytest.raises(InputError, match="--rerank-run") as missing:
        evaluate([datasets_dir / "scifact"], ["rerank"], show_progress=False)
    assert missing.value.field == "rerank_run"
    with pytest.raises(InputError, match="rerank\\[:model\\]"):
        evaluate([datasets_dir / "scifact"], ["bm25"], rerank_run=run_file, show_progress=False)
