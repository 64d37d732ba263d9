"""``omniretrieve-hybrid-reranker``: the reranker that works with bundled weights only.

No cross-encoder ships on PyPI, so the default reranker combines two kinds of evidence about
each (query, document) pair:

- lexical: BM25 of the document among the candidate set (bm25s; each document analysed in its
  own language, the query in its language among the candidates' (English stemming and
  stopwords for English, as when the weights were fitted); IDF from the candidates
  themselves), divided by the best candidate's BM25, and its z-score within the set;
- dense: cosine similarity of the bundled all-MiniLM-L6-v2 embeddings, and its z-score within
  the set.

A logistic regression over these four features turns them into a probability of relevance in
[0, 1]. Its weights live in ``hybrid_reranker.json`` beside this module and were fitted on
SciFact's *train* queries by ``benchmarks/train_hybrid_reranker.py`` (BM25 top-100 candidates,
qrels as labels); the test queries it is judged on were never used.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from omniretrieve.fusion import zscores
from omniretrieve.inputs import Input, TextInput, texts_of
from omniretrieve.models.base import (
    EmbeddingModel,
    LoadOptions,
    ProgressCallback,
    RerankModel,
    ScoreOutput,
    sigmoid,
)
from omniretrieve.models.registry import DEFAULT_EMBEDDER, default_registry
from omniretrieve.models.sources import Family, ModelSource
from omniretrieve.text.analyzers import Analyzer, tokenize_group
from omniretrieve.text.bm25 import BM25Index
from omniretrieve.text.language import detect, detect_or

PARAMS_NAME = "hybrid_reranker.json"
PARAMS_FILE = Path(__file__).with_name(PARAMS_NAME)
"""The bundled weights; a directory holding its own ``hybrid_reranker.json`` (and no
``config.json``) is the same reranker with the weights ``finetune`` refitted on a corpus."""
FEATURES = ("dense_cosine", "bm25_over_max", "dense_z", "bm25_z")


@dataclass(frozen=True)
class HybridParams:
    weights: tuple[float, ...]
    bias: float

    def logits(self, features: np.ndarray) -> np.ndarray:
        """The regression's linear value (its raw score): the probability's log-odds."""
        return features.astype(np.float64) @ np.asarray(self.weights) + self.bias

    def probability(self, features: np.ndarray) -> np.ndarray:
        return sigmoid(self.logits(features))

    @classmethod
    def read(cls, path: Path = PARAMS_FILE) -> HybridParams:
        data = json.loads(path.read_text(encoding="utf-8"))
        if tuple(data["features"]) != FEATURES:
            raise ValueError(f"{path} was fitted on features {data['features']}, not {FEATURES}")
        return cls(weights=tuple(float(w) for w in data["weights"]), bias=float(data["bias"]))


FLAT = 1e-6
"""A candidate set whose scores vary less than this gets zero z-scores (as when fitted)."""
TOKEN_CACHE_SIZE = 200_000
"""Documents whose BM25 terms a reranker remembers (the same candidates come back often)."""


def candidate_bm25(
    query: str,
    documents: Sequence[str],
    tokens: Sequence[list[str]] | None = None,
    languages: Sequence[str] | None = None,
) -> np.ndarray:
    """BM25 of each document for ``query``, with IDF taken from the candidate set itself.

    With ``tokens`` and ``languages`` (each document's terms and language, see
    :meth:`HybridReranker._terms`), the query is analysed in its language, chosen among the
    candidates' languages; without them, everything is analysed as English."""

    if languages is None:
        return BM25Index(documents, tokens=tokens).scores(query)

    index = BM25Index(documents, analyzer=Analyzer("auto"), tokens=tokens)
    return index.scores(query, detect(query, among=set(languages)))


def combine_features(cosine: np.ndarray, bm25: np.ndarray) -> np.ndarray:
    """(n, 4) features in :data:`FEATURES` order from raw cosine and BM25 scores."""
    best = float(bm25.max()) if bm25.size else 0.0
    bm25_over_max = bm25 / best if best > 0 else np.zeros_like(bm25)
    features = np.stack(
        [cosine, bm25_over_max, zscores(cosine, min_std=1e-6), zscores(bm25, min_std=1e-6)], axis=1
    )
    return features.astype(np.float32)


class HybridReranker(RerankModel):
    family = "hybrid-reranker"
    modalities = frozenset({"text"})

    def __init__(self, model_id: str, embedder: EmbeddingModel, params: HybridParams) -> None:
        self.model_id = model_id
        self.embedder = embedder
        self.params = params
        self._tokens: OrderedDict[str, tuple[list[str], str]] = OrderedDict()
        self._tokens_lock = threading.Lock()

    def _bm25(
        self, query: str, documents: Sequence[str], languages: Sequence[str] | None = None
    ) -> np.ndarray:
        analysed = self._terms(documents, languages)
        return candidate_bm25(
            query, documents, [t for t, _ in analysed], [lang for _, lang in analysed]
        )

    def _terms(
        self, documents: Sequence[str], languages: Sequence[str] | None = None
    ) -> list[tuple[list[str], str]]:
        """BM25 terms and language of each document (analysed in its own language: English
        documents exactly as the weights were fitted), computed once and remembered (LRU).
        ``languages``, when the caller knows them, spares detecting each document's."""

        with self._tokens_lock:
            cached = [self._tokens.get(d) for d in documents]
        known = dict(zip(documents, languages, strict=True)) if languages is not None else {}
        missing = [d for d, terms in zip(documents, cached, strict=True) if terms is None]
        fresh = {}
        for document in missing:
            language = known.get(document) or detect_or(document[:500], "en")
            fresh[document] = (tokenize_group([document], language)[0], language)
        with self._tokens_lock:
            for document, terms in fresh.items():
                self._tokens[document] = terms
            for document in documents:
                if document in self._tokens:
                    self._tokens.move_to_end(document)
            while len(self._tokens) > TOKEN_CACHE_SIZE:
                self._tokens.popitem(last=False)
        return [
            terms if terms is not None else fresh[d]
            for d, terms in zip(documents, cached, strict=True)
        ]

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> HybridReranker:
        embedder = options.embedding_model
        if embedder is None or embedder.model_id != DEFAULT_EMBEDDER:
            embedder_source = default_registry().resolve(DEFAULT_EMBEDDER)
            embedder = embedder_source.family.loader().load(embedder_source, options)
        own = source.path / PARAMS_NAME if source.path is not None else None
        params = (
            HybridParams.read(own) if own is not None and own.is_file() else HybridParams.read()
        )
        return cls(source.model_id, embedder, params)

    def score(
        self,
        query: Input,
        documents: Sequence[Input],
        *,
        progress: ProgressCallback | None = None,
    ) -> ScoreOutput:
        query_text = texts_of([query], model_id=self.model_id, field="query")[0]
        texts = texts_of(documents, model_id=self.model_id, field="documents")
        query_out = self.embedder.encode([TextInput(query_text)], task="retrieval.query")
        docs_out = self.embedder.encode(
            [TextInput(t) for t in texts], task="retrieval.passage", progress=progress
        )
        cosine = _unit(docs_out.vectors) @ _unit(query_out.vectors)[0]
        features = combine_features(cosine, self._bm25(query_text, texts))
        tokens = len(texts) * query_out.token_counts[0] + sum(docs_out.token_counts)
        logits = self.params.logits(features)
        return ScoreOutput(
            scores=sigmoid(logits),
            truncated=docs_out.truncated,
            total_tokens=tokens,
            raw_scores=logits.astype(np.float32),
        )

    def score_with_similarities(
        self,
        query: str,
        documents: Sequence[str],
        cosine: np.ndarray,
        languages: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Scores when the dense similarities are already known (a collection's stored passage
        vectors): only BM25 over the candidates is computed. ``cosine`` is one value per
        document, from the same embedder this reranker uses; ``languages`` the documents'
        languages where known (else detected)."""
        bm25 = self._bm25(query, documents, languages)
        return self.params.probability(combine_features(cosine, bm25))


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


FAMILY = Family(
    name="hybrid-reranker",
    kind="reranker",
    modalities=frozenset({"text"}),
    # the bundled id; or a directory of refitted weights (finetune)
    matches=lambda info: PARAMS_NAME in info.files and "config.json" not in info.files,
    loader=lambda: HybridReranker,
)
