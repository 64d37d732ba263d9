"""Documents held by Milvus alone (``storage="milvus"``): the rows, and the collection's state
read from them.

One more Milvus collection, ``<collection>____documents__``, holds each document as JSON (the
document, its language and, per vector field, its passages' character spans), cut into parts
under Milvus's VARCHAR limit: row ``<id>\\x1f0`` carries how many parts there are, so any
document is read with primary-key lookups (one round trip, two for a long one). Passage
vectors stay in the vector fields' rows (``<id>\\x1f<n>``), read the same way.

:class:`HeldState` takes the place of :class:`~omniretrieve.index.records.StoredState`: its
``documents`` and ``passages`` are mappings over those rows, with a bounded cache of what was
read and, until :meth:`HeldState.settle` says Milvus holds them, the writes the WAL
acknowledged. So our process holds a batch, a cache and the WAL's unsettled tail, not the
corpus.
"""

from __future__ import annotations

import json
import random
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from omniretrieve.errors import CollectionFormatError
from omniretrieve.hashing import document_hash
from omniretrieve.index.milvus_store import MAX_ID_BYTES, SEPARATOR, MilvusVectors
from omniretrieve.index.records import StoredDocument, StoredState, parse_spans

DOCUMENTS_FIELD = "__documents__"
LEDGER_ID = f"{SEPARATOR}ledger"
"""The primary key of the ledger row (no document id holds the separator)."""
PART_CHARS = 16_000
"""Characters of a document's JSON per row: at most 4 bytes each, under Milvus's 65,535."""
CACHE_DOCUMENTS = 4_096
READ_CHUNK = 512
Spans = list[tuple[int, int]]
Passages = tuple[Spans, np.ndarray]


class MilvusDocumentRows:
    """The documents collection of one omniretrieve collection in Milvus."""

    def __init__(self, milvus: MilvusVectors) -> None:
        self.milvus = milvus
        self._name: str | None = None

    @property
    def _client(self) -> Any:
        return self.milvus.client

    def _ensure(self) -> str:
        from pymilvus import DataType

        if self._name is not None:
            return self._name
        name = self.milvus.name(DOCUMENTS_FIELD)
        if not self._client.has_collection(name):
            schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("pid", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=MAX_ID_BYTES)
            schema.add_field("part", DataType.INT64)
            schema.add_field("parts", DataType.INT64)
            schema.add_field("lang", DataType.VARCHAR, max_length=16)
            schema.add_field("body", DataType.VARCHAR, max_length=65_535)
            schema.add_field("marker", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs a vector
            index = self._client.prepare_index_params()
            index.add_index(field_name="marker", index_type="AUTOINDEX", metric_type="IP")
            self._client.create_collection(name, schema=schema, index_params=index)
        self._client.load_collection(name)
        self._name = name
        return name

    def write(
        self,
        documents: Sequence[tuple[StoredDocument, str, Mapping[str, Spans]]],
        new: Iterable[str] = frozenset(),
    ) -> None:
        """Replace each (document, language, spans per field); those in ``new`` have no
        rows yet (no delete is sent for them)."""
        name = self._ensure()
        fresh = set(new)
        rows: list[dict[str, Any]] = []
        for document, language, spans in documents:
            body = json.dumps(
                {"document": document.to_json(), "spans": {f: [list(s) for s in v]
                                                           for f, v in spans.items()}},
                ensure_ascii=False,
            )  # fmt: skip
            parts = [body[i : i + PART_CHARS] for i in range(0, len(body), PART_CHARS)]
            for number, part in enumerate(parts):
                rows.append(
                    {
                        "pid": f"{document.doc_id}{SEPARATOR}{number}",
                        "doc_id": document.doc_id,
                        "part": number,
                        "parts": len(parts),
                        "lang": language[:16],
                        "body": part,
                        "marker": [0.0, 0.0],
                    }
                )
        self.delete([doc.doc_id for doc, _, _ in documents if doc.doc_id not in fresh])
        if rows:
            self.milvus.insert_rows(name, rows)

    def delete(self, doc_ids: Sequence[str]) -> None:
        if doc_ids:
            self.milvus.delete_by_document(self._ensure(), doc_ids)

    def read(self, doc_ids: Sequence[str]) -> dict[str, tuple[StoredDocument, dict[str, Spans]]]:
        """The documents Milvus holds among ``doc_ids`` (the others are absent)."""
        name = self._ensure()
        found: dict[str, tuple[StoredDocument, dict[str, Spans]]] = {}
        for start in range(0, len(doc_ids), READ_CHUNK):
            chunk = list(dict.fromkeys(doc_ids[start : start + READ_CHUNK]))
            first = self._client.get(
                name,
                ids=[f"{d}{SEPARATOR}0" for d in chunk],
                output_fields=["doc_id", "parts", "body"],
            )
            bodies = {row["doc_id"]: [row["body"]] for row in first}
            rest = [
                f"{row['doc_id']}{SEPARATOR}{n}" for row in first for n in range(1, row["parts"])
            ]
            if rest:
                later = self._client.get(name, ids=rest, output_fields=["doc_id", "part", "body"])
                for row in sorted(later, key=lambda r: (r["doc_id"], r["part"])):
                    bodies[row["doc_id"]].append(row["body"])
            for doc_id, pieces in bodies.items():
                try:
                    data = json.loads("".join(pieces))
                    spans = {f: parse_spans(v) for f, v in data["spans"].items()}
                    document = StoredDocument.from_json(data["document"])
                    if document.content_hash and document.content_hash != document_hash(
                        document.text, document.image
                    ):
                        raise ValueError("its text no longer matches its content hash")
                    found[doc_id] = (document, spans)
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    raise CollectionFormatError(
                        f"Milvus ({self.milvus.uri}) holds a damaged row for document "
                        f"{doc_id!r} ({type(exc).__name__}: {exc}); restore Milvus's data from "
                        "a backup, or delete and upsert the document again"
                    ) from exc
        return found

    def write_ledger(self, ledger: Mapping[str, Any]) -> None:
        """Replace this collection's ledger row (:mod:`omniretrieve.index.held_ledger`)."""
        name = self._ensure()
        row = {
            "pid": LEDGER_ID,
            "doc_id": LEDGER_ID,
            "part": -1,
            "parts": 0,
            "lang": "",
            "body": json.dumps(dict(ledger)),
            "marker": [0.0, 0.0],
        }
        self._client.upsert(name, [row])

    def read_ledger(self) -> Any:
        """The ledger row's content (None: there is none; anything else as found)."""
        found = self._client.get(self._ensure(), ids=[LEDGER_ID], output_fields=["body"])
        if not found:
            return None
        try:
            return json.loads(found[0]["body"])
        except ValueError:
            return "damaged"

    def count(self) -> int:
        result = self._client.query(self._ensure(), filter="part == 0", output_fields=["count(*)"])
        return int(result[0]["count(*)"])

    def scan(self, field: str) -> Iterator[Any]:
        """Each document's ``field`` (``doc_id``, ``lang``), streamed."""
        iterator = self._client.query_iterator(
            self._ensure(), batch_size=4096, filter="part == 0", output_fields=[field]
        )
        try:
            while batch := iterator.next():
                for row in batch:
                    yield row[field]
        finally:
            iterator.close()


class HeldDocuments(MutableMapping[str, StoredDocument]):
    """Document id -> document, read from Milvus (a bounded cache), with the acknowledged
    writes not yet settled in Milvus in front (``None``: deleted)."""

    def __init__(self, rows: MilvusDocumentRows) -> None:
        self.rows = rows
        self.pending: dict[str, StoredDocument | None] = {}
        self.pending_spans: dict[str, dict[str, Spans]] = {}
        self._cache: OrderedDict[str, tuple[StoredDocument, dict[str, Spans]] | None] = (
            OrderedDict()
        )

    # -- reading ----------------------------------------------------------------------------
    def prefetch(self, doc_ids: Iterable[str]) -> None:
        """Read these documents in one round trip (those not cached or pending)."""
        wanted = [
            d for d in dict.fromkeys(doc_ids) if d not in self.pending and d not in self._cache
        ]
        if not wanted:
            return
        found = self.rows.read(wanted)
        for doc_id in wanted:
            self._remember(doc_id, found.get(doc_id))

    def _remember(self, doc_id: str, entry: tuple[StoredDocument, dict[str, Spans]] | None) -> None:
        self._cache[doc_id] = entry
        self._cache.move_to_end(doc_id)
        while len(self._cache) > CACHE_DOCUMENTS:
            self._cache.popitem(last=False)

    def entry(self, doc_id: str) -> tuple[StoredDocument, dict[str, Spans]] | None:
        if doc_id in self.pending:
            document = self.pending[doc_id]
            return None if document is None else (document, self.pending_spans.get(doc_id, {}))
        if doc_id not in self._cache:
            self.prefetch([doc_id])
        return self._cache[doc_id]

    def __getitem__(self, doc_id: str) -> StoredDocument:
        entry = self.entry(doc_id)
        if entry is None:
            raise KeyError(doc_id)
        return entry[0]

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.entry(doc_id) is not None

    def in_milvus(self, doc_ids: Sequence[str]) -> set[str]:
        """Which of these Milvus holds (pending writes aside)."""
        return set(self.rows.read(list(doc_ids)))

    def __iter__(self) -> Iterator[str]:
        for doc_id, document in self.pending.items():
            if document is not None:
                yield doc_id
        for doc_id in self.rows.scan("doc_id"):
            if doc_id not in self.pending:
                yield doc_id

    def __len__(self) -> int:
        unsettled = list(self.pending)
        held = self.in_milvus(unsettled) if unsettled else set()
        added = sum(1 for d in unsettled if self.pending[d] is not None and d not in held)
        removed = sum(1 for d in unsettled if self.pending[d] is None and d in held)
        return self.rows.count() + added - removed

    # -- acknowledged writes (settled once Milvus holds them) ------------------------------------
    def __setitem__(self, doc_id: str, document: StoredDocument) -> None:
        self.pending[doc_id] = document
        self.pending_spans[doc_id] = {}

    def __delitem__(self, doc_id: str) -> None:
        if doc_id not in self:
            raise KeyError(doc_id)
        self.pending[doc_id] = None
        self.pending_spans.pop(doc_id, None)

    def settle(self, doc_ids: Iterable[str]) -> None:
        for doc_id in doc_ids:
            self.pending.pop(doc_id, None)
            self.pending_spans.pop(doc_id, None)
            self._cache.pop(doc_id, None)


class HeldPassages(MutableMapping[str, Passages]):
    """Doc id -> (spans, vectors) of one vector field: spans from the document's row,
    vectors from the field's rows (read when asked, never cached)."""

    def __init__(self, field: str, documents: HeldDocuments, milvus: MilvusVectors) -> None:
        self.field = field
        self._documents = documents
        self._milvus = milvus
        self.pending: dict[str, np.ndarray] = {}

    def spans(self, doc_id: str) -> Spans | None:
        entry = self._documents.entry(doc_id)
        return None if entry is None else entry[1].get(self.field)

    def __getitem__(self, doc_id: str) -> Passages:
        spans = self.spans(doc_id)
        if spans is None:
            raise KeyError(doc_id)
        if doc_id in self.pending:
            return spans, self.pending[doc_id]
        return spans, self._milvus.passage_vectors(self.field, {doc_id: len(spans)})[doc_id]

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.spans(doc_id) is not None

    def __setitem__(self, doc_id: str, value: Passages) -> None:
        self._documents.pending_spans.setdefault(doc_id, {})[self.field] = value[0]
        self.pending[doc_id] = value[1]

    def __delitem__(self, doc_id: str) -> None:
        self.pending.pop(doc_id, None)  # the document's deletion removes its rows

    def __iter__(self) -> Iterator[str]:
        return (d for d in self._documents if d in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class HeldFields(MutableMapping[str, HeldPassages]):
    """Vector field -> its passages (every field of the collection; others are refused)."""

    def __init__(self, fields: Sequence[str], documents: HeldDocuments, milvus: MilvusVectors):
        self._fields = {f: HeldPassages(f, documents, milvus) for f in fields}

    def __getitem__(self, field: str) -> HeldPassages:
        return self._fields[field]

    def __setitem__(self, field: str, value: Any) -> None:
        raise KeyError(f"{field!r} is not a vector field of this collection")

    def __delitem__(self, field: str) -> None:
        raise KeyError(field)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


class HeldState(StoredState):
    """A collection's state when Milvus alone holds the documents."""

    def __init__(self, milvus: MilvusVectors, fields: Sequence[str]) -> None:
        documents = HeldDocuments(MilvusDocumentRows(milvus))
        passages = HeldFields(fields, documents, milvus)
        super().__init__(documents, passages)  # type: ignore[arg-type]
        self.held_documents = documents
        self.held_fields = passages

    def unsettled(self) -> tuple[list[str], list[str]]:
        """The acknowledged writes Milvus may not hold: (upserted ids, deleted ids)."""
        pending = self.held_documents.pending
        return [d for d, v in pending.items() if v is not None], [
            d for d, v in pending.items() if v is None
        ]

    def settle(self, doc_ids: Iterable[str]) -> None:
        """Milvus now holds these documents' writes: read them from there."""
        ids = list(doc_ids)
        self.held_documents.settle(ids)
        for passages in self.held_fields.values():
            for doc_id in ids:
                passages.pending.pop(doc_id, None)


def sample_ids(doc_ids: Iterable[str], size: int, seed: int) -> list[str]:
    """``size`` ids drawn uniformly from a stream (reservoir sampling: memory for the
    sample only), in the stream's order."""
    rng = random.Random(seed)
    chosen: list[tuple[int, str]] = []
    for seen, doc_id in enumerate(doc_ids):
        if seen < size:
            chosen.append((seen, doc_id))
        else:
            slot = rng.randrange(seen + 1)
            if slot < size:
                chosen[slot] = (seen, doc_id)
    return [doc_id for _, doc_id in sorted(chosen)]


def read_state(state: HeldState, doc_ids: Sequence[str]) -> StoredState:
    """These documents and their passages, read from Milvus into an in-memory state (a
    sample to tune on)."""
    sample = StoredState()
    for start in range(0, len(doc_ids), READ_CHUNK):
        chunk = doc_ids[start : start + READ_CHUNK]
        found = state.held_documents.rows.read(chunk)
        for doc_id in chunk:
            if doc_id in found:
                sample.documents[doc_id] = found[doc_id][0]
        for field in state.held_fields:
            spans = {d: entry[1][field] for d, entry in found.items() if field in entry[1]}
            counts = {d: len(s) for d, s in spans.items()}
            vectors = state.held_documents.rows.milvus.passage_vectors(field, counts)
            per_doc = sample.passages.setdefault(field, {})
            for doc_id, block in vectors.items():
                per_doc[doc_id] = (spans[doc_id], block)
    return sample


def prefetch(documents: Mapping[str, StoredDocument], doc_ids: Iterable[str]) -> None:
    """Read these documents in one round trip where they live in Milvus (else nothing)."""
    if isinstance(documents, HeldDocuments):
        documents.prefetch(doc_ids)
