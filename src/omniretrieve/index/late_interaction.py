"""Late-interaction search over many documents' per-token vectors (BGE-M3's multi-vectors,
ColBERT, ColPali): candidates by centroid interaction, rescored exactly by MaxSim.

Below ``exact_threshold`` token vectors every admitted document is scored exactly (one matrix
product). Above it, PLAID's candidate generation, with faiss's k-means:

1. The token vectors are clustered (``centroids`` of them, k-means on a sample); each token
   keeps its centroid's id, and each centroid the documents that have a token in it.
2. A query's candidates are the documents with a token in one of each query vector's
   ``nprobe`` nearest centroids; each is credited, per query vector, with the best similarity
   among those of its centroids (PLAID's centroid interaction, pruned to the probed
   centroids); the best ``4 x rescore`` get the full centroid interaction (MaxSim with each of
   their tokens replaced by its centroid).
3. The ``rescore`` best candidates by that score get their exact MaxSim against their stored
   vectors (float32, or float16 / int8 codes where memory binds: ``codes``).

Documents are rows ``0 .. n-1`` in the order given; callers map them to ids. ``reduce`` is how
MaxSim reduces over the query's vectors (``mean``: BGE-M3; ``sum``: ColBERT, ColPali).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Literal

import numpy as np

Codes = Literal["float32", "float16", "int8"]
SHORTLIST = 4
"""The pruned credit keeps this many times ``rescore`` documents for the full centroid
interaction, which keeps ``rescore`` of them for exact MaxSim."""


@dataclass(frozen=True)
class LateInteractionConfig:
    codes: Codes = "float32"
    """How the token vectors are kept for rescoring (int8: one scale per document)."""
    exact_threshold: int = 200_000
    """Up to this many token vectors, every document is scored exactly."""
    nprobe: int = 8
    """Nearest centroids each query vector draws candidates from."""
    rescore: int = 256
    """Candidates rescored exactly (at least ``k``)."""
    reduce: str = "mean"
    seed: int = 0


class LateInteractionIndex:
    def __init__(
        self, documents: Sequence[np.ndarray], config: LateInteractionConfig | None = None
    ) -> None:
        self.config = config or LateInteractionConfig()
        if self.config.reduce not in ("mean", "sum"):
            raise ValueError(f"reduce is mean or sum, not {self.config.reduce!r}")
        self.size = len(documents)
        counts = np.array([len(d) for d in documents], dtype=np.int64)
        self.dimension = int(documents[0].shape[1]) if self.size else 0
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        tokens = (
            np.ascontiguousarray(np.concatenate(documents), dtype=np.float32)
            if self.size
            else np.zeros((0, self.dimension), np.float32)
        )
        self.tokens = len(tokens)
        self._owners = np.repeat(np.arange(self.size, dtype=np.int32), counts)
        self._stored, self._scales = _encode(tokens, counts, self.config.codes)
        self.kind = "exact" if len(tokens) <= self.config.exact_threshold else "centroids"
        self._centroids = np.zeros((0, self.dimension), np.float32)
        self._token_centroid = np.zeros(0, np.int32)
        self._list_starts = np.zeros(1, np.int64)
        self._list_rows = np.zeros(0, np.int32)
        if self.kind == "centroids":
            self._cluster(tokens)

    def _cluster(self, tokens: np.ndarray) -> None:
        faiss: Any = import_module("faiss")
        count = int(min(65536, 2 ** round(np.log2(4 * np.sqrt(len(tokens))))))
        rng = np.random.default_rng(self.config.seed)
        sample = tokens[
            np.sort(rng.choice(len(tokens), min(len(tokens), 64 * count), replace=False))
        ]
        kmeans = faiss.Kmeans(
            self.dimension, count, niter=10, seed=self.config.seed, spherical=True, verbose=False
        )
        kmeans.train(sample)
        self._centroids = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
        _, assigned = kmeans.index.search(tokens, 1)
        self._token_centroid = assigned[:, 0].astype(np.int32)
        # per centroid, the documents with a token in it (each once), as CSR arrays
        pairs = np.unique(
            self._token_centroid.astype(np.int64) * (self.size + 1) + self._owners,
            return_index=False,
        )
        lists, rows = np.divmod(pairs, self.size + 1)
        self._list_starts = np.searchsorted(lists, np.arange(count + 1)).astype(np.int64)
        self._list_rows = rows.astype(np.int32)

    @property
    def memory_bytes(self) -> int:
        """What the index holds: the rescoring copy and its scales, token owners and
        offsets, centroids, each token's centroid and the centroids' document lists."""
        arrays = [
            self._stored,
            self._owners,
            self._starts,
            self._centroids,
            self._token_centroid,
            self._list_starts,
            self._list_rows,
        ]
        if self._scales is not None:
            arrays.append(self._scales)
        return int(sum(a.nbytes for a in arrays))

    def vectors(self, row: int) -> np.ndarray:
        """Document ``row``'s stored token vectors, as float32."""
        start, end = self._starts[row], self._starts[row + 1]
        block = self._stored[start:end].astype(np.float32)
        if self._scales is not None:
            block *= self._scales[row]
        return block

    def _token_positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``rows``' tokens, concatenated: their positions among all tokens, each row's offset
        in the concatenation, and each row's token count."""
        starts = self._starts[rows]
        lengths = self._starts[rows + 1] - starts
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return (
            np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum())),
            offsets,
            lengths,
        )

    def exact(self, query: np.ndarray, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """MaxSim of ``query`` against each of ``rows`` from the stored vectors."""
        query = np.asarray(query, dtype=np.float32)
        rows = np.asarray(rows, dtype=np.int64)
        scores = np.zeros(len(rows), dtype=np.float32)
        if not len(rows) or not len(query):
            return scores
        gather, offsets, lengths = self._token_positions(rows)
        block = self._stored[gather].astype(np.float32)
        if self._scales is not None:
            block *= np.repeat(self._scales[rows], lengths)[:, None]
        similarities = query @ block.T  # (query vectors, tokens of every row)
        present = lengths > 0
        best = np.maximum.reduceat(similarities, offsets[present], axis=1)  # (vectors, rows)
        reduced = best.mean(axis=0) if self.config.reduce == "mean" else best.sum(axis=0)
        scores[present] = reduced
        return scores

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """The best ``k`` documents (row, MaxSim), best first; ``allowed``: a boolean mask of
        the rows a filter admits (None: all)."""
        query = np.ascontiguousarray(query, dtype=np.float32)
        if self.size == 0 or not len(query):
            return []
        if self.kind == "exact":
            rows = np.arange(self.size) if allowed is None else np.flatnonzero(allowed)
        else:
            rows = self._candidates(query, k, allowed)
        if not len(rows):
            return []
        scores = self.exact(query, rows)
        order = np.lexsort((rows, -scores))[:k]
        return [(int(rows[i]), float(scores[i])) for i in order]

    def _candidates(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> np.ndarray:
        """The rows worth rescoring: per query vector, the documents with a token in one of
        its ``nprobe`` nearest centroids, each credited with the best of those centroids'
        similarities (a document credited by no probe of a vector gets 0 for it); the best
        ``rescore`` rows by the sum."""
        similarities = query @ self._centroids.T  # (query vectors, centroids)
        probe = min(self.config.nprobe, len(self._centroids))
        nearest = np.argpartition(-similarities, probe - 1, axis=1)[:, :probe]
        bound = np.zeros(self.size, dtype=np.float32)
        for vector in range(len(query)):
            lists = nearest[vector][np.argsort(-similarities[vector, nearest[vector]])]
            starts, ends = self._list_starts[lists], self._list_starts[lists + 1]
            rows = np.concatenate([self._list_rows[a:b] for a, b in zip(starts, ends, strict=True)])
            credit = np.repeat(similarities[vector, lists], ends - starts)
            rows, first = np.unique(rows, return_index=True)  # best list first: its credit
            bound[rows] += credit[first]
        if allowed is not None:
            bound[~allowed] = 0.0
        found = np.flatnonzero(bound > 0)
        wanted = max(k, self.config.rescore)
        if len(found) > SHORTLIST * wanted:  # the pruned credit picks a shortlist
            found = found[
                np.argpartition(-bound[found], SHORTLIST * wanted - 1)[: SHORTLIST * wanted]
            ]
        if len(found) <= wanted:
            return np.sort(found)
        # full centroid interaction over the shortlist: MaxSim with each token's centroid
        gather, offsets, _ = self._token_positions(found)
        approximate = similarities[:, self._token_centroid[gather]]
        interaction = np.maximum.reduceat(approximate, offsets, axis=1).sum(axis=0)
        keep = np.argpartition(-interaction, wanted - 1)[:wanted]
        return np.sort(found[keep])


def _encode(
    tokens: np.ndarray, counts: np.ndarray, codes: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """The rescoring copy: float32 as given, float16, or int8 with one scale per document (its
    largest absolute component over 127)."""
    if codes == "float32":
        return tokens, None
    if codes == "float16":
        return tokens.astype(np.float16), None
    if codes != "int8":
        raise ValueError(f"codes is float32, float16 or int8, not {codes!r}")
    owners = np.repeat(np.arange(len(counts)), counts)
    peaks = np.zeros(len(counts), dtype=np.float32)
    if len(tokens):
        np.maximum.at(peaks, owners, np.abs(tokens).max(axis=1))
    scales = np.where(peaks > 0, peaks / 127.0, 1.0).astype(np.float32)
    quantised = np.rint(tokens / scales[owners][:, None]).clip(-127, 127).astype(np.int8)
    return quantised, scales
