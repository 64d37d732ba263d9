"""Shared pieces of the SciFact benchmarks: BM25 first stage, cached dense vectors, runs."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omniretrieve import Embedder
from omniretrieve.eval.datasets import Document, load_corpus, load_qrels, load_queries
from omniretrieve.models.hybrid_reranker import HybridParams, candidate_bm25, combine_features
from omniretrieve.runtime.cache import EmbeddingCache
from omniretrieve.text.bm25 import BM25Index

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = (
    Path(os.environ.get("OMNIRETRIEVE_DATASETS", ROOT.parent / "shared" / "datasets")) / "scifact"
)
CACHE = EmbeddingCache(ROOT / ".cache")

Run = dict[str, dict[str, float]]


@dataclass(frozen=True)
class SciFactSplit:
    corpus: dict[str, Document]
    queries: dict[str, str]
    """Every query, in file order."""
    qrels: dict[str, dict[str, int]]

    @classmethod
    def read(cls, split: str) -> SciFactSplit:
        return cls(
            load_corpus(SCIFACT / "corpus.jsonl"),
            load_queries(SCIFACT / "queries.jsonl"),
            load_qrels(SCIFACT / "qrels" / f"{split}.tsv"),
        )

    def judged_queries(self) -> dict[str, str]:
        """The queries judged in this split, in file order."""
        return {qid: text for qid, text in self.queries.items() if qid in self.qrels}


@dataclass
class SciFactSetup:
    data: SciFactSplit
    doc_ids: list[str]
    doc_texts: list[str]
    bm25: BM25Index
    embedder: Embedder
    doc_vectors: np.ndarray

    @classmethod
    def build(cls, split: str) -> SciFactSetup:
        data = SciFactSplit.read(split)
        doc_ids = list(data.corpus)
        doc_texts = [data.corpus[d].full_text for d in doc_ids]
        started = time.perf_counter()
        bm25 = BM25Index(doc_texts)
        print(f"BM25 index over {len(doc_texts)} docs: {time.perf_counter() - started:.1f}s")
        embedder = Embedder()
        started = time.perf_counter()
        doc_vectors = CACHE.get_or_compute(
            embedder.fingerprint,
            "retrieval.passage",
            doc_texts,
            lambda texts: embedder.encode_texts(
                texts, task="retrieval.passage", show_progress=True
            ),
        )
        print(f"corpus vectors (cached or encoded): {time.perf_counter() - started:.1f}s")
        return cls(data, doc_ids, doc_texts, bm25, embedder, doc_vectors)

    def query_vectors(self, queries: dict[str, str]) -> np.ndarray:
        texts = list(queries.values())
        return CACHE.get_or_compute(
            self.embedder.fingerprint,
            "retrieval.query",
            texts,
            lambda t: self.embedder.encode_texts(t, task="retrieval.query"),
        )

    def bm25_candidates(self, queries: dict[str, str], k: int) -> dict[str, list[int]]:
        indices, _ = self.bm25.search(list(queries.values()), k)
        return {qid: list(map(int, row)) for qid, row in zip(queries, indices, strict=True)}

    def bm25_run(self, queries: dict[str, str], k: int = 100) -> Run:
        indices, scores = self.bm25.search(list(queries.values()), k)
        return {
            qid: {self.doc_ids[i]: float(s) for i, s in zip(idx, sc, strict=True)}
            for qid, idx, sc in zip(queries, indices, scores, strict=True)
        }

    def dense_run(self, queries: dict[str, str], k: int = 100) -> Run:
        sims = self.query_vectors(queries) @ self.doc_vectors.T
        run: Run = {}
        for qid, row in zip(queries, sims, strict=True):
            top = np.argsort(-row)[:k]
            run[qid] = {self.doc_ids[i]: float(row[i]) for i in top}
        return run

    def candidate_features(
        self, queries: dict[str, str], candidates: dict[str, list[int]]
    ) -> dict[str, np.ndarray]:
        """Hybrid-reranker features per query, from the cached vectors (same math as the model)."""
        q_vectors = self.query_vectors(queries)
        features: dict[str, np.ndarray] = {}
        for (qid, text), q in zip(queries.items(), q_vectors, strict=True):
            cand = candidates[qid]
            cosine = self.doc_vectors[cand] @ q
            bm25 = candidate_bm25(text, [self.doc_texts[i] for i in cand])
            features[qid] = combine_features(cosine, bm25)
        return features

    def rerank_run(
        self,
        candidates: dict[str, list[int]],
        features: dict[str, np.ndarray],
        params: HybridParams,
    ) -> Run:
        run: Run = {}
        for qid, cand in candidates.items():
            scores = params.probability(features[qid])
            run[qid] = {self.doc_ids[i]: float(s) for i, s in zip(cand, scores, strict=True)}
        return run
