"""Cross-lingual pseudo-queries for collections in several languages.

A query cut from a document must find the document's translation when the collection holds
one: without such queries, a multilingual collection's fit judges only queries in their
documents' language, where BM25 does well, and over-weights BM25 for questions asked in one
language about documents in another. Translations are mined as multilingual sentence
embeddings mine bitext: a source's nearest document in another language, averaged over the
collection's multilingual fields (those declaring more than one language, or none), kept when
the two are each other's nearest in their languages and the pair stands out from the source's
next neighbours in that language (a ratio margin, as in Artetxe & Schwenk's mining). The cut
query is then judged by the translation, its own document left out of the lists.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from omniretrieve.index.field_outputs import model_outputs
from omniretrieve.index.settings import field_name
from omniretrieve.index.tuning.pseudo_queries import PseudoQuery

MIN_LANGUAGE_SHARE = 0.05
"""A language counts when at least this share of the documents is in it."""
MARGIN = 1.1
"""The best candidate's cosine over the mean of the source's next four, at least."""
NEIGHBOURS = 4


def cross_lingual_queries(
    source: Any, queries: Sequence[PseudoQuery], fields: Sequence[str]
) -> list[PseudoQuery]:
    """For each pseudo-query whose document has a mined translation, the same query judged
    by that translation (none when the collection has fewer than two languages or no
    multilingual field)."""
    state = source.state()
    languages = {d: source.document_language(d) for d in state.documents}
    counts = Counter(languages.values())
    present = {lang for lang, n in counts.items() if n >= MIN_LANGUAGE_SHARE * len(languages)}
    multilingual = [
        m
        for m in fields
        if _multilingual(source.embedder(m).languages)
        and "dense" in model_outputs(source.embedder(m))  # first passages are dense vectors
    ]
    if len(present) < 2 or not multilingual:
        return []
    ids = [d for d in state.documents if languages[d] in present]
    for model_id in multilingual:
        stored = state.passages.get(field_name(model_id), {})
        ids = [d for d in ids if d in stored and len(stored[d][1])]
    if not ids:
        return []
    vectors = _first_passages(state, multilingual, ids)
    position = {d: i for i, d in enumerate(ids)}
    language_of = np.array([languages[d] for d in ids])
    sources = {q.doc_id for q in queries}
    mined = []
    for query in queries:
        row = position.get(query.doc_id)
        if row is None:
            continue
        own = language_of[row]
        similarity = vectors @ vectors[row]
        similarity[language_of == own] = -np.inf
        best = int(np.argmax(similarity))
        if not np.isfinite(similarity[best]) or ids[best] in sources:
            continue
        # the margin over the next candidates in the translation's language (a sentence may
        # have translations in several languages, all close)
        rivals = similarity[language_of == language_of[best]]
        following = np.sort(rivals)[::-1][1 : 1 + NEIGHBOURS]
        if len(following) and similarity[best] < MARGIN * float(following.mean()):
            continue
        back = vectors @ vectors[best]
        back[language_of != own] = -np.inf
        if int(np.argmax(back)) != row:  # not each other's nearest
            continue
        mined.append(replace(query, kind="cross", target=ids[best]))
    return mined


def _multilingual(languages: frozenset[str] | None) -> bool:
    return languages is None or len(languages) > 1


def _first_passages(state: Any, fields: Sequence[str], ids: Sequence[str]) -> np.ndarray:
    """Per document, its first passage vectors of every field side by side (each unit
    length, scaled so the dot product is the mean cosine over the fields)."""
    blocks = []
    for model_id in fields:
        stored = state.passages[field_name(model_id)]
        block = np.stack([stored[d][1][0] for d in ids]).astype(np.float32)
        block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        blocks.append(block / np.sqrt(len(fields)))
    return np.concatenate(blocks, axis=1)
