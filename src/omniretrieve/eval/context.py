"""What every dataset of one ``evaluate`` call shares: the models and collection options
(:class:`EvalModels`) and the run's options (:class:`EvalRun`). Both are frozen; the model
maps fill as models are first needed (a cache, not configuration), and the OCR reader is
created once, on first use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from omniretrieve.index.model_protocols import IndexEmbedder, IndexReranker
from omniretrieve.ocr.reader import OcrReader
from omniretrieve.runtime.cache import EmbeddingCache


@dataclass
class OcrSource:
    """The OCR reader of an evaluation, made on first use (tesseract or rapidocr)."""

    engine: str = "tesseract"
    reader: Any = None

    def get(self) -> Any:
        if self.reader is None:
            self.reader = OcrReader(self.engine)
        return self.reader


@dataclass(frozen=True)
class EvalModels:
    embedders: dict[str, IndexEmbedder] = field(default_factory=dict)
    """Model id -> embedder; missing ones are added (cached on disk) when a pipeline needs
    them."""
    rerankers: dict[str, IndexReranker] = field(default_factory=dict)
    passages: Literal["split", "first"] = "split"
    vector_store: Literal["faiss", "milvus"] = "faiss"
    sparse: Literal["local", "milvus"] = "local"
    """Where BM25 runs (``milvus``: Milvus's full-text search, with the Milvus store)."""
    storage: Literal["folder", "milvus"] = "folder"
    """Where the collections' documents live (``milvus``: Milvus alone)."""
    ocr: OcrSource = field(default_factory=OcrSource)
    dtype: str = "auto"
    """Precision of the embedders the evaluation loads itself (float32, bfloat16, int8...)."""
    native: dict[str, Any] = field(default_factory=dict)
    """Model id -> an Embedder reading every input kind (images too), made on first use."""

    def native_embedder(self, model_id: str) -> Any:
        """An :class:`~omniretrieve.embedder.Embedder` for ``model_id`` that reads every input
        kind (eval's caching wrappers read text only), loaded once and kept."""
        from omniretrieve.embedder import Embedder

        found = self.embedders.get(model_id)
        if isinstance(found, Embedder):
            return found
        loaded = self.native.get(model_id)
        if loaded is None:
            loaded = self.native[model_id] = Embedder(model_id)
        return loaded

    def reranker(self, model_id: str) -> IndexReranker:
        """The reranker ``model_id`` (one passed in, or loaded once and kept)."""
        from omniretrieve.reranker import Reranker

        if model_id not in self.rerankers:
            self.rerankers[model_id] = Reranker(model_id)
        return self.rerankers[model_id]


@dataclass(frozen=True)
class EvalRun:
    """One ``evaluate`` call's options, as every dataset sees them."""

    cache: EmbeddingCache
    cache_dir: Path
    models: EvalModels
    collection_name: str | None
    collections_root: Path | None
    max_queries: int | None
    show_progress: bool
    fit_fusion: str | None
    fitted: dict[str, Any]
    """Fusion fits of this dataset, by pipeline (filled as they are made, for the report)."""
    depth: int = 20
    """Documents kept per query (every metric's cutoff fits)."""
    runs_dir: Path | None = None
    """Where each pipeline's run is written in TREC format (``<dataset>/<task>/<pipeline>.trec``);
    None: not written."""
    instructions: dict[str, str] = field(default_factory=dict)
    """Embedder id -> the instruction its queries carry (a named task or a text); embedders
    not listed use their default."""
    supplied_run: Mapping[str, Mapping[str, float]] | None = None
    """The run ``rerank[:model]`` pipelines rerank (``--rerank-run``): query id -> document
    id -> score."""
