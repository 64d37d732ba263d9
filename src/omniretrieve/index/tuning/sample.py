"""What tuning reads of a collection whose documents Milvus alone holds: a uniform sample of
its documents read into memory (tuning draws its pseudo-queries and computes its lists over a
sample anyway), so a fit never reads the whole corpus into our process."""

from __future__ import annotations

from typing import Any

from omniretrieve.index.languages import LanguageCache
from omniretrieve.index.milvus_documents import HeldState, read_state, sample_ids
from omniretrieve.index.store import StoredDocument, StoredState

TUNING_SAMPLE = 10_000
"""Documents a fit reads from Milvus (memory for these, not the corpus)."""


class SampledSource:
    """A collection seen through a sample of its documents (the rest is the collection's)."""

    def __init__(self, source: Any, state: StoredState) -> None:
        self._source = source
        self._state = state
        self._languages = LanguageCache(lambda: state.documents)

    def state(self) -> StoredState:
        return self._state

    def get(self, doc_id: str) -> StoredDocument | None:
        return self._state.documents.get(doc_id)

    def document_language(self, doc_id: str) -> str:
        return self._languages.document(doc_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def tuning_source(source: Any, seed: int) -> tuple[Any, int]:
    """What to tune on and how many documents the collection holds: the collection itself,
    or, where Milvus holds its documents, a sample of them."""
    state = source.state()
    total = len(state.documents)
    if not isinstance(state, HeldState):
        return source, total
    chosen = sample_ids(iter(state.documents), TUNING_SAMPLE, seed)
    return SampledSource(source, read_state(state, chosen)), total
