"""What a search reads from its collection: the one interface the search
(:mod:`~omniretrieve.index.search`) and its stages (:mod:`~omniretrieve.index.pipeline`)
share."""

from __future__ import annotations

from typing import Protocol

from omniretrieve.index.model_protocols import IndexEmbedder, IndexReranker
from omniretrieve.index.settings import CollectionSettings
from omniretrieve.index.store import StoredDocument, StoredState
from omniretrieve.index.tuning.fit import CollectionTuning


class SearchSource(Protocol):
    """What a search reads from its collection."""

    name: str
    settings: CollectionSettings

    def state(self) -> StoredState: ...

    def embedder(self, model_id: str) -> IndexEmbedder: ...

    def reranker(self, model_id: str) -> IndexReranker: ...

    def tuning(self) -> CollectionTuning | None:
        """The fusion fitted on pseudo-queries (used where ``fusion`` is ``auto``)."""
        ...

    def document_image(self, document: StoredDocument) -> bytes:
        """A stored document's image bytes (files only where the collection allows paths)."""
        ...
