"""The search half of :class:`~omniretrieve.index.collection.Collection`'s public API: each
method hands the query to the collection's :class:`~omniretrieve.index.search.Searcher`."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal

from omniretrieve.index.queries import SearchQuery, parse_query
from omniretrieve.index.query_reading import ReadQuery, read_query_image
from omniretrieve.index.results import FirstStage, SearchHit
from omniretrieve.index.search import Searcher
from omniretrieve.index.settings import CollectionSettings
from omniretrieve.inputs import Input
from omniretrieve.ocr.engines import OcrUnavailableError


@dataclass(frozen=True)
class SearchReport:
    hits: list[SearchHit]
    read: ReadQuery
    """The query as searched (with the image's OCR text) and what each stage made of it."""
    seconds: float


class CollectionSearching:
    """Searching a collection (mixed into :class:`~omniretrieve.index.collection.Collection`,
    which sets ``_searcher`` when it opens)."""

    _searcher: Searcher
    _ingest: Any
    settings: CollectionSettings
    embedder: Callable[[str], Any]
    reranker: Callable[[str], Any]

    def reusing_first_stages(self) -> AbstractContextManager[None]:
        """Within the block, each query's BM25 list, its list per vector field and its query
        vectors are computed once and reused by later searches with the same filter (an
        evaluation runs several pipelines over the same queries); released when it ends."""
        return self._searcher.reusing_first_stages()

    @property
    def cached_first_stages(self) -> int | None:
        """How many first-stage entries are held (None outside :meth:`reusing_first_stages`)."""
        return self._searcher.cached_entries

    def search(
        self,
        query: str | Mapping[str, Any] | Input | SearchQuery,
        *,
        top_k: int = 10,
        mode: str = "hybrid",
        rerank: bool | str = False,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 (the API's field name)
        embedders: Sequence[str] | Literal["auto"] | None = None,
        fusion_weights: Sequence[float] | None = None,
        instruction: str | None = None,
        max_chars: int | None = None,
        diversity: float | None = None,
        collapse_duplicates: bool = False,
        outputs: Sequence[str] | None = None,
    ) -> list[SearchHit]:
        """One query (a text, an image, or both: ``{"text": ..., "image": ...}``); see
        :meth:`search_many`."""
        return self.search_many(
            [query],
            top_k=top_k,
            mode=mode,
            rerank=rerank,
            filter=filter,
            embedders=embedders,
            fusion_weights=fusion_weights,
            instruction=instruction,
            max_chars=max_chars,
            diversity=diversity,
            collapse_duplicates=collapse_duplicates,
            outputs=outputs,
        )[0]

    def search_report(
        self,
        query: str | Mapping[str, Any] | Input | SearchQuery,
        *,
        mode: str = "hybrid",
        rerank: bool | str = False,
        embedders: Sequence[str] | Literal["auto"] | None = None,
        **options: Any,
    ) -> SearchReport:
        """:meth:`search`, with what each stage made of the query's image (read, read as its
        OCR text, or not read: :mod:`~omniretrieve.index.query_reading`) and the time taken;
        the CLI, the server and the page show both."""
        started = time.perf_counter()
        parsed = parse_query(query, "query")
        read = read_query_image(parsed, self._query_stages(mode, rerank, embedders), self._ocr())
        hits = self.search(read.query, mode=mode, rerank=rerank, embedders=embedders, **options)
        return SearchReport(hits, read, time.perf_counter() - started)

    def _query_stages(
        self, mode: str, rerank: bool | str, embedders: Sequence[str] | str | None
    ) -> dict[str, bool]:
        """The stages a search runs, and whether each reads images."""
        stages: dict[str, bool] = {}
        if mode in ("sparse", "hybrid"):
            stages["sparse"] = False
        if mode in ("dense", "hybrid"):
            fields = (
                self.settings.embedders if not isinstance(embedders, list | tuple) else embedders
            )
            for model_id in fields:
                stages[f"dense:{model_id}"] = "image" in self.embedder(model_id).modalities
        if rerank:
            model_id = self.settings.reranker if rerank is True else rerank
            stages["rerank"] = "image" in self.reranker(model_id).model.modalities
        return stages

    def query_image_readers(self) -> dict[str, Any]:
        """Who can read a query's image: the embedders that read images, and whether OCR can
        read its text for the stages that read text only (the page offers an image query
        only where one of them can)."""
        return {
            "embedders": [
                m for m in self.settings.embedders if "image" in self.embedder(m).modalities
            ],
            "ocr": self._ocr() is not None,
        }

    def _ocr(self) -> Callable[[bytes], str] | None:
        try:
            reader = self._ingest.ocr_reader()
        except OcrUnavailableError:
            return None
        return lambda data: reader.read_many([data])[0]

    def search_many(self, queries: Sequence[Any], **options: Any) -> list[list[SearchHit]]:
        """Search several queries with the same settings (``top_k``, ``mode``, ``rerank``,
        ``filter``, ``embedders``, ``fusion_weights``, ``route_by_language``,
        ``show_progress``): see :meth:`omniretrieve.index.search.Searcher.search_many`."""
        return self._searcher.search_many(queries, **options)

    def rerank_supplied(
        self, queries: Sequence[Any], candidates: Sequence[Mapping[str, float]], **options: Any
    ) -> list[list[SearchHit]]:
        """Rerank candidate lists made elsewhere (a TREC run): see
        :meth:`omniretrieve.index.search.Searcher.rerank_supplied`."""
        return self._searcher.rerank_supplied(queries, candidates, **options)

    def first_stage_runs(
        self, queries: Sequence[Any], **options: Any
    ) -> tuple[tuple[str, ...], list[FirstStage]]:
        """The lists hybrid search fuses, per query, before fusion: see
        :meth:`omniretrieve.index.search.Searcher.first_stage_runs`."""
        return self._searcher.first_stage_runs(queries, **options)

    def fuse_runs(
        self,
        stage: FirstStage,
        fields: tuple[str, ...],
        fusion_weights: Sequence[float] | None = None,
        fusion_method: str | None = None,
    ) -> dict[str, float]:
        """Hybrid search's fused scores for one query's first stage."""
        return self._searcher.fuse_runs(stage, fields, fusion_weights, fusion_method)
