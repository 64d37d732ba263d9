"""SciFact (test split) through ``evaluate``: BM25, dense, hybrid and hybrid + rerank, each a
``Collection.search_many`` call, as users get them.

The eval collection is kept under .cache/ between runs (named by the dataset's checksum and the
embedders); a re-run finds it complete and only searches."""

from __future__ import annotations

from pathlib import Path

import pytest

from omniretrieve.eval.runner import evaluate
from tests.conftest import CACHE_DIR

pytestmark = pytest.mark.slow

PIPELINES = ["bm25", "dense", "hybrid", "hybrid+rerank"]


@pytest.fixture(scope="module")
def scifact_report(datasets_dir: Path, minilm, hybrid_reranker, tmp_path_factory):
    out = tmp_path_factory.mktemp("scifact-eval")
    report = evaluate(
        [datasets_dir / "scifact"],
        PIPELINES,
        cache_dir=CACHE_DIR,
        embedders={"all-MiniLM-L6-v2": minilm},
        rerankers={"omniretrieve-hybrid-reranker": hybrid_reranker},
        out_dir=out,
    )
    return report, out


def test_scifact_table(scifact_report) -> None:
    report, _ = scifact_report
    ndcg = {p: report.result("scifact", "test", p).metrics["ndcg@10"] for p in PIPELINES}
    print(ndcg)
    assert ndcg["bm25"] >= 0.655, ndcg  # BEIR reports 0.665
    assert ndcg["hybrid"] >= 0.72, ndcg
    assert ndcg["hybrid"] > max(ndcg["bm25"], ndcg["dense"]), ndcg
    assert ndcg["hybrid+rerank"] >= ndcg["hybrid"] - 0.005, ndcg
    assert report.result("scifact", "test", "bm25").queries == 300


def test_report_files(scifact_report) -> None:
    import json

    _, out = scifact_report
    table = (out / "report.md").read_text()
    assert "| hybrid+rerank |" in table and "scifact ndcg@10" in table
    data = json.loads((out / "results.json").read_text())
    assert data["config"]["datasets"][0]["checksum"]
    assert len(data["results"][0]["per_query"]["ndcg@10"]) == 300
    for plot in ("per-query", "deltas"):
        png = (out / f"scifact-ndcg_at_10-{plot}.png").read_bytes()
        assert png.startswith(b"\x89PNG")
    assert data["significance"] and all(t["family"] == 3 for t in data["significance"])


def test_fusion_fitted_on_pseudo_queries(
    datasets_dir: Path, minilm, hybrid_reranker, scifact_report
) -> None:
    """``--fit-fusion pseudo``: the fusion and reranker mix a collection fits from its own
    documents beat each signal alone, and the rerank it keeps does not lose."""
    report, _ = scifact_report
    tuned = evaluate(
        [datasets_dir / "scifact"],
        ["hybrid", "hybrid+rerank"],
        cache_dir=CACHE_DIR,
        embedders={"all-MiniLM-L6-v2": minilm},
        rerankers={"omniretrieve-hybrid-reranker": hybrid_reranker},
        fit_fusion="pseudo",
    )
    alone = [report.result("scifact", "test", p).metrics["ndcg@10"] for p in ("bm25", "dense")]
    auto = {
        p: tuned.result("scifact", "test", p).metrics["ndcg@10"]
        for p in ("hybrid", "hybrid+rerank")
    }
    print(auto)
    assert auto["hybrid"] > max(alone) + 0.03, (auto, alone)
    assert auto["hybrid+rerank"] >= auto["hybrid"], auto
    fit = tuned.config["fusion_weights"]["by_dataset"]["scifact"]["hybrid"]["pseudo"]
    assert fit["queries"] == 400 and "candidates" not in fit
