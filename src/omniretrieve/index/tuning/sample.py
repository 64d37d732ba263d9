"""What a fit reads of a collection: a snapshot, taken in a moment (under the collection's
lock, where one guards it), that the fit then reads alone while the collection goes on
answering searches and taking writes.

- Documents in the folder: the documents and passage mappings copied (references to the
  stored objects, which writes replace and never change), with the languages already
  detected for them.
- Documents Milvus alone holds: a uniform sample of them read into memory (tuning draws its
  pseudo-queries and computes its lists over a sample anyway), so a fit never reads the whole
  corpus into our process.

Everything else (settings, models, passage splitting, images) is the collection's.
"""

from __future__ import annotations

from typing import Any

from omniretrieve.index.languages import LanguageCache
from omniretrieve.index.milvus_documents import HeldState, read_state, sample_ids
from omniretrieve.index.store import StoredDocument, StoredState
from omniretrieve.text.bm25 import Analyzer
from omniretrieve.text.language import detect

TUNING_SAMPLE = 10_000
"""Documents a fit reads from Milvus (memory for these, not the corpus)."""


class TuningSnapshot:
    """A collection seen through a copy (or a sample) of its documents taken at one moment."""

    def __init__(
        self, source: Any, state: StoredState, languages: LanguageCache, *, sampled: bool
    ) -> None:
        self._source = source
        self._state = state
        self._languages = languages
        self._sampled = sampled
        self.documents_total = len(source.state().documents) if sampled else len(state.documents)
        """How many documents the collection held when the snapshot was taken."""
        self._known: frozenset[str] | None = None

    def state(self) -> StoredState:
        return self._state

    def get(self, doc_id: str) -> StoredDocument | None:
        return self._state.documents.get(doc_id)

    def document_language(self, doc_id: str) -> str:
        return self._languages.document(doc_id)

    def query_language(self, query: str) -> str:
        """Chosen among the snapshot's document languages, as the collection's BM25 chooses
        among its own (a sample asks the collection, whose languages Milvus holds)."""
        if self._sampled:
            return str(self._source.query_language(query))
        if self._known is None:
            analyzer = Analyzer(self._source.settings.language)
            self._known = (
                frozenset(self.document_language(d) for d in self._state.documents)
                if analyzer.language == "auto"
                else frozenset({analyzer.language})
            )
        return detect(query, among=self._known or None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def take_snapshot(source: Any, languages: LanguageCache, seed: int) -> TuningSnapshot:
    """``source``'s documents as a fit reads them (see the module); ``languages`` is the
    collection's cache, whose known document languages the snapshot starts from."""
    if isinstance(source, TuningSnapshot):
        return source
    state = source.state()
    if isinstance(state, HeldState):
        chosen = sample_ids(iter(state.documents), TUNING_SAMPLE, seed)
        sample = read_state(state, chosen)
        return TuningSnapshot(source, sample, LanguageCache(lambda: sample.documents), sampled=True)
    copied = StoredState(
        documents=dict(state.documents),
        passages={name: dict(entries) for name, entries in state.passages.items()},
    )
    return TuningSnapshot(source, copied, languages.copy_over(copied.documents), sampled=False)
