"""Where training data comes from: what users have.

- a BEIR folder and a qrels split (``--dataset DIR --split train``): labelled pairs;
- a JSONL of pairs (``--pairs FILE``): ``{"query", "positive" | "positive_id",
  "negatives"?: [...] | "negative_ids"?: [...]}`` (ids need a ``--corpus``);
- a collection with a query log of clicks (``{"query", "doc_id"}`` per line);
- only documents, a corpus file or a collection (unsupervised): pseudo-queries cut from the
  documents as the collection's self-tuning fit cuts them, the cut span removed from the
  document that must answer it. Nothing but the corpus is read: no qrels, no queries.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from omniretrieve.errors import DatasetError, InputError
from omniretrieve.jsonl import read_jsonl
from omniretrieve.training.examples import DataFile, Pair, TrainingData, positives_by_query

Cut = Literal["lead", "sentence", "mixed"]
CUTS: tuple[str, ...] = ("lead", "sentence", "mixed")

DEFAULT_PSEUDO_QUERIES = 5000
"""Pseudo-queries cut from a corpus unless told otherwise (one per document at most)."""


def from_beir(root: Path, split: str) -> TrainingData:
    """Labelled pairs from a BEIR folder's ``qrels/<split>.tsv`` (judgements above 0)."""
    from omniretrieve.eval.datasets import load_corpus, load_qrels, load_queries

    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        found = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise DatasetError(
            f"{root} has no qrels split {split!r} (found: {', '.join(found) or 'none'})",
            field="split",
        )
    corpus_path, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    corpus = {d.doc_id: d.full_text for d in load_corpus(corpus_path).values()}
    queries = load_queries(queries_path)
    pairs = [
        Pair(queries[query_id], corpus[doc_id], doc_id)
        for query_id, judged in sorted(load_qrels(qrels_path).items())
        if query_id in queries
        for doc_id, grade in sorted(judged.items())
        if grade > 0 and doc_id in corpus and corpus[doc_id].strip()
    ]
    if not pairs:
        raise DatasetError(f"{qrels_path} judges no query of {queries_path} relevant to a document")
    return TrainingData(
        pairs,
        corpus,
        positives_by_query(pairs),
        "labels",
        tuple(DataFile.of(p) for p in (corpus_path, queries_path, qrels_path)),
        f"{root} (qrels split {split})",
    )


def from_pairs(path: Path, corpus_path: Path | None = None) -> TrainingData:
    """Pairs from a JSONL file; ids resolve against ``corpus_path`` (which negatives are then
    also mined from)."""
    corpus = _read_corpus(corpus_path) if corpus_path is not None else {}
    pairs = [_pair(record, corpus, path, number) for number, record in read_jsonl(path)]
    if not pairs:
        raise DatasetError(f"{path} holds no pairs", field="pairs")
    files = [DataFile.of(path)] + ([DataFile.of(corpus_path)] if corpus_path else [])
    return TrainingData(
        pairs, corpus, positives_by_query(pairs), "labels", tuple(files), f"{path} (pairs)"
    )


def _pair(record: dict[str, Any], corpus: dict[str, str], path: Path, number: int) -> Pair:
    where = f"{path}:{number}"
    query = record.get("query")
    if not isinstance(query, str) or not query.strip():
        raise DatasetError(f"{where}: 'query' must be a non-empty string", field="query")
    positive_id = record.get("positive_id")
    positive = record.get("positive")
    if positive is None and positive_id is not None:
        positive = _lookup(corpus, positive_id, where, "positive_id")
    if not isinstance(positive, str) or not positive.strip():
        raise DatasetError(
            f"{where}: give 'positive' (a text) or 'positive_id' (an id of --corpus)",
            field="positive",
        )
    negatives = list(record.get("negatives") or [])
    negative_ids = [str(i) for i in record.get("negative_ids") or []]
    negatives += [_lookup(corpus, i, where, "negative_ids") for i in negative_ids]
    if not all(isinstance(n, str) and n.strip() for n in negatives):
        raise DatasetError(f"{where}: 'negatives' must be non-empty strings", field="negatives")
    return Pair(
        query,
        positive,
        str(positive_id) if positive_id is not None else None,
        tuple(negatives),
        tuple(negative_ids) if len(negative_ids) == len(negatives) else (),
    )


def _lookup(corpus: dict[str, str], doc_id: Any, where: str, field: str) -> str:
    if not corpus:
        raise DatasetError(f"{where}: '{field}' needs --corpus to look the id up", field=field)
    text = corpus.get(str(doc_id))
    if text is None:
        raise DatasetError(f"{where}: {field} {doc_id!r} is not in the corpus", field=field)
    return text


def _read_corpus(path: Path) -> dict[str, str]:
    from omniretrieve.eval.datasets import load_corpus

    return {d.doc_id: d.full_text for d in load_corpus(path).values() if d.full_text.strip()}


def from_corpus(
    path: Path, *, count: int = DEFAULT_PSEUDO_QUERIES, seed: int = 0, cut: Cut = "lead"
) -> TrainingData:
    """Unsupervised: pseudo-queries cut from a corpus file (BEIR ``corpus.jsonl`` layout)."""
    corpus = _read_corpus(path)
    return pseudo_query_data(corpus, count=count, seed=seed, cut=cut).with_files(
        (DataFile.of(path),), f"{path} (pseudo-queries)"
    )


def pseudo_query_data(
    corpus: dict[str, str],
    *,
    count: int = DEFAULT_PSEUDO_QUERIES,
    seed: int = 0,
    cut: Cut = "lead",
) -> TrainingData:
    """Pseudo-queries from ``corpus``, each paired with its document less the cut span:
    ``lead`` cuts as the self-tuning fit does (a code's documentation, a text's first
    sentence, else a span), ``sentence`` an inner sentence drawn at random (the inverse cloze
    task; the fit's cut where a document has none), ``mixed`` either, drawn per document."""
    from omniretrieve.index.tuning.pseudo_queries import cut_query, cut_sentence

    if cut not in CUTS:
        raise InputError(f"pseudo-query cut {cut!r}: lead, sentence or mixed", field="cut")
    order = sorted(corpus)
    random.Random(seed).shuffle(order)
    pairs: list[Pair] = []
    for doc_id in order:
        if len(pairs) >= count:
            break
        rng = random.Random(f"{seed}:{doc_id}")
        inner = cut == "sentence" or (cut == "mixed" and rng.random() < 0.5)
        drawn = cut_sentence(doc_id, corpus[doc_id], rng) if inner else None
        cut_from = drawn or cut_query(doc_id, corpus[doc_id], rng)
        if cut_from is not None:
            pairs.append(Pair(cut_from.text, cut_from.masked, doc_id))
    if not pairs:
        raise DatasetError(
            "no pseudo-query could be cut from the corpus (its documents are too short)",
            field="corpus",
        )
    return TrainingData(pairs, corpus, positives_by_query(pairs), "pseudo-queries")


def from_collection(
    collection: Any,
    *,
    clicks: Path | None = None,
    count: int = DEFAULT_PSEUDO_QUERIES,
    seed: int = 0,
    cut: Cut = "lead",
) -> TrainingData:
    """A collection's text documents; with ``clicks`` (``{"query", "doc_id"}`` per line) the
    clicked documents are the positives, without them pseudo-queries are cut."""
    corpus = {d.doc_id: d.text for d in collection.iter_documents() if d.text and d.text.strip()}
    name = f"collection {collection.name!r}"
    if not corpus:
        raise InputError(f"{name} holds no text documents to train on", field="collection")
    if clicks is None:
        return pseudo_query_data(corpus, count=count, seed=seed, cut=cut).with_files(
            (), f"{name} (pseudo-queries)"
        )
    pairs = list(_clicked(read_jsonl(clicks), corpus, clicks))
    return TrainingData(
        pairs,
        corpus,
        positives_by_query(pairs),
        "clicks",
        (DataFile.of(clicks),),
        f"{name} + clicks {clicks}",
    )


def _clicked(
    records: Iterable[tuple[int, dict[str, Any]]], corpus: dict[str, str], path: Path
) -> Iterable[Pair]:
    seen: set[tuple[str, str]] = set()
    for number, record in records:
        query, doc_id = record.get("query"), record.get("doc_id")
        if not isinstance(query, str) or not query.strip() or doc_id is None:
            raise DatasetError(
                f'{path}:{number}: a click is {{"query": text, "doc_id": id}}', field="clicks"
            )
        if str(doc_id) not in corpus:
            raise DatasetError(
                f"{path}:{number}: clicked document {doc_id!r} is not in the collection",
                field="clicks",
            )
        if (query, str(doc_id)) not in seen:
            seen.add((query, str(doc_id)))
            yield Pair(query, corpus[str(doc_id)], str(doc_id))
