"""Passage scores made document scores, as every search of a collection's fields does it: a
document's best passage (``max``) or the sum of its passages' (``sum``), the best ``k``
documents kept, ties broken by document order (rows) or id (pairs)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from omniretrieve.fusion import top


def aggregate_rows(
    owners: np.ndarray, scores: np.ndarray, doc_ids: list[str], k: int, how: str
) -> dict[str, float]:
    """Passage hits (their documents' positions, best first) -> the best ``k`` documents."""
    if owners.size == 0:
        return {}
    if how == "max":  # hits come best first: a document's first is its max
        positions, first = np.unique(owners, return_index=True)
        per_doc: np.ndarray = scores[first].astype(np.float64)
    else:
        positions, inverse = np.unique(owners, return_inverse=True)
        per_doc = np.bincount(inverse, weights=scores.astype(np.float64))
    order = np.lexsort((positions, -per_doc))[:k]
    chosen = positions[order].tolist()
    return dict(zip([doc_ids[i] for i in chosen], per_doc[order].tolist(), strict=True))


def aggregate(passages: Sequence[tuple[str, float]], k: int, how: str) -> dict[str, float]:
    """Passage scores -> document scores (max or sum), best ``k`` documents."""
    per_doc: dict[str, float] = {}
    for doc_id, score in passages:
        if how == "max":
            per_doc[doc_id] = max(per_doc.get(doc_id, -np.inf), score)
        else:
            per_doc[doc_id] = per_doc.get(doc_id, 0.0) + score
    return dict(top(per_doc, k))
