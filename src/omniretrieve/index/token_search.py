"""Search over a collection's learned-sparse and multi-vector fields
(:mod:`~omniretrieve.index.field_outputs`), built lazily from the stored rows and dropped on
every write, as the vector stores' dense indexes are:

- learned-sparse: one CSR matrix (passages x token ids); a query's score per passage is
  BGE-M3's lexical matching (the sum of weight products over shared token ids), one sparse
  product for all passages;
- multi-vector: a :class:`~omniretrieve.index.late_interaction.LateInteractionIndex` over the
  passages (exact MaxSim, or centroid candidates rescored exactly above its threshold); or,
  given candidate documents (Milvus's nearest token rows), their exact MaxSim.

Passage scores become document scores as dense ones do (the collection's ``aggregate``: the
best passage, or the sum).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from omniretrieve.index.field_outputs import passage_runs
from omniretrieve.index.late_interaction import Codes, LateInteractionConfig, LateInteractionIndex
from omniretrieve.index.passage_scores import aggregate, aggregate_rows
from omniretrieve.index.store import StoredState
from omniretrieve.multi_vector import SparseEmbedding, maxsim


@dataclass
class _Passages:
    """A field's passages: per passage its document's position, and the documents' ids."""

    owners: np.ndarray
    doc_ids: list[str]

    def allowed_rows(self, allowed: set[str] | None) -> np.ndarray | None:
        if allowed is None:
            return None
        permitted = np.fromiter(
            (d in allowed for d in self.doc_ids), dtype=bool, count=len(self.doc_ids)
        )
        return permitted[self.owners]

    def per_document(self, scores: np.ndarray, k: int, how: str) -> dict[str, float]:
        """Passage scores (``-inf``: not admitted) -> the best ``k`` documents."""
        kept = np.flatnonzero(np.isfinite(scores))
        best_first = kept[np.argsort(-scores[kept], kind="stable")]
        return aggregate_rows(self.owners[best_first], scores[best_first], self.doc_ids, k, how)


class SparseRows:
    """Lexical matching over documents' learned-sparse rows (document id -> (spans, rows))."""

    def __init__(self, per_doc: Iterable[tuple[str, tuple[Sequence, np.ndarray]]]) -> None:
        from scipy.sparse import csr_matrix

        owners, doc_ids, columns, values, pointers = [], [], [], [], [0]
        for position, (doc_id, (spans, rows)) in enumerate(per_doc):
            doc_ids.append(doc_id)
            for first, end in passage_runs(spans):
                owners.append(position)
                columns.append(rows[first:end, 0].astype(np.int64))
                values.append(rows[first:end, 1])
                pointers.append(pointers[-1] + end - first)
        self.passages = _Passages(np.asarray(owners, dtype=np.int64), doc_ids)
        cols = np.concatenate(columns) if columns else np.zeros(0, np.int64)
        width = int(cols.max()) + 1 if cols.size else 1
        self.matrix = csr_matrix(
            (np.concatenate(values) if values else np.zeros(0, np.float32), cols, pointers),
            shape=(len(owners), width),
            dtype=np.float64,
        )

    def search(
        self, query: SparseEmbedding, k: int, allowed: set[str] | None, how: str
    ) -> dict[str, float]:
        inside = query.indices < self.matrix.shape[1]
        if not self.matrix.shape[0] or not inside.any():
            return {}
        columns = self.matrix[:, query.indices[inside]]
        scores = np.asarray(columns @ query.values[inside].astype(np.float64)).ravel()
        scores[scores <= 0] = -np.inf  # no shared token: not a match
        mask = self.passages.allowed_rows(allowed)
        if mask is not None:
            scores[~mask] = -np.inf
        return self.passages.per_document(scores, k, how)


class MultiVectorRows:
    """MaxSim over documents' token vectors (document id -> (spans, rows))."""

    def __init__(
        self,
        per_doc: Iterable[tuple[str, tuple[Sequence, np.ndarray]]],
        reduce: str,
        codes: Codes = "float32",
    ) -> None:
        owners, doc_ids, blocks = [], [], []
        for position, (doc_id, (spans, rows)) in enumerate(per_doc):
            doc_ids.append(doc_id)
            for first, end in passage_runs(spans):
                owners.append(position)
                blocks.append(rows[first:end])
        self.passages = _Passages(np.asarray(owners, dtype=np.int64), doc_ids)
        self.index = LateInteractionIndex(blocks, LateInteractionConfig(codes, reduce=reduce))

    def search(
        self, query: np.ndarray, k: int, allowed: set[str] | None, how: str
    ) -> dict[str, float]:
        mask = self.passages.allowed_rows(allowed)
        # passages, then documents: extra passages so k documents survive aggregation
        found = self.index.search(query, k * 3, mask)
        scores = np.full(self.index.size, -np.inf)
        for row, score in found:
            scores[row] = score
        return self.passages.per_document(scores, k, how)


class TokenIndexes:
    """A collection's learned-sparse and multi-vector indexes, one per field, built on first
    use from ``state()`` and dropped by :meth:`invalidate`."""

    def __init__(
        self, state: Callable[[], StoredState], how: Callable[[], str], codes: Codes = "float32"
    ) -> None:
        """``codes``: how the in-process late-interaction index keeps the token vectors it
        rescores (the collection's ``quantization``: ``int8`` and ``binary`` keep int8)."""
        self._state = state
        self._how = how
        self._codes = codes
        self._sparse: dict[str, SparseRows] = {}
        self._multi: dict[tuple[str, str], MultiVectorRows] = {}

    def invalidate(self) -> None:
        self._sparse.clear()
        self._multi.clear()

    def search_sparse(
        self,
        field: str,
        queries: Sequence[SparseEmbedding],
        k: int,
        allowed: set[str] | None,
    ) -> list[dict[str, float]]:
        """Per query: the best ``k`` documents by lexical matching (a positive score)."""
        if field not in self._sparse:
            self._sparse[field] = SparseRows(self._state().passages.get(field, {}).items())
        index = self._sparse[field]
        return [index.search(q, k, allowed, self._how()) for q in queries]

    def search_multivector(
        self,
        field: str,
        queries: Sequence[np.ndarray],
        k: int,
        allowed: set[str] | None,
        reduce: str,
    ) -> list[dict[str, float]]:
        """Per query (its token vectors): the best ``k`` documents by MaxSim."""
        key = (field, reduce)
        if key not in self._multi:
            stored = self._state().passages.get(field, {}).items()
            self._multi[key] = MultiVectorRows(stored, reduce, self._codes)
        index = self._multi[key]
        return [index.search(q, k, allowed, self._how()) for q in queries]

    def rescore(
        self, field: str, query: np.ndarray, doc_ids: Iterable[str], k: int, reduce: str
    ) -> dict[str, float]:
        """The exact MaxSim of these documents (the best ``k``), read from the stored rows."""
        per_doc = self._state().passages.get(field, {})
        passages = [
            (doc_id, maxsim(query, rows[a:b], reduce))
            for doc_id in doc_ids
            if doc_id in per_doc
            for spans, rows in [per_doc[doc_id]]
            for a, b in passage_runs(spans)
        ]
        return aggregate(passages, k, self._how())
