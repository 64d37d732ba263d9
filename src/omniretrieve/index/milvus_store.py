"""Dense search served by Milvus: the scale path of a collection.

The collection directory stays the source of truth (documents, vectors and the WAL, crash-safe
as always); Milvus holds a copy of the passage vectors and answers the dense searches. The same
``MilvusClient`` code talks to Milvus Lite (a local file, the default: ``<collection>/milvus.db``)
or to a Milvus server or cluster (``http://host:19530``; a token is read from
``OMNIRETRIEVE_MILVUS_TOKEN`` and never written to disk). Opening a collection for writing
re-synchronises Milvus with the directory: a write acknowledged locally whose Milvus push was
cut off by a crash is pushed again, and rows of deleted documents are removed.

One Milvus collection per vector field: ``<collection>__<field>``; a row per passage with its
document id, the document's content hash, its metadata (a JSON field, for filters) and vector.

With ``sparse="milvus"`` BM25 runs in Milvus too (its full-text search): one more collection,
``<collection>____bm25__``, a row per document whose analysed text (ours: per-language
stemming and stop words, :mod:`omniretrieve.index.milvus_sparse`) Milvus turns into a sparse
BM25 vector with its ``BM25`` function and searches with a ``SPARSE_INVERTED_INDEX``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from omniretrieve.errors import InputError
from omniretrieve.errors import VectorStoreError as VectorStoreError

TOKEN_ENV = "OMNIRETRIEVE_MILVUS_TOKEN"
SEPARATOR = "\x1f"
MAX_ID_BYTES = 2048
DELETE_CHUNK = 500
BM25_FIELD = "__bm25__"
"""The field name of a collection's BM25 rows (no embedder's field starts with ``_``)."""
MAX_TEXT_BYTES = 65_535
"""Milvus's VARCHAR limit: BM25 indexes this much of a document's analysed text."""
SEAL_ROWS = 5_000
"""Milvus Lite searches vectors not yet flushed into a sealed segment about 7x slower (20k
384-d vectors: 720 ms a query before ``flush``, 98 ms after), so this many inserted vector rows
are flushed. BM25 rows are never flushed on Lite: Lite 3.2.2 computes BM25's statistics (IDF,
mean length) per segment, so a document in a segment of its own scored 0.29 where its twin in
a larger one scored 4.90 (only unflushed rows share one set of statistics). A Milvus server
seals segments itself and rate-limits ``flush``: never called there."""
SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://", "unix:")


class _LiteFiles:
    """How many open :class:`MilvusVectors` use each Milvus Lite file in this process. Lite
    runs inside the process that opened the file and keeps it locked until told to stop
    (pymilvus's ``close`` does not), so the last user to close stops it."""

    def __init__(self) -> None:
        self._users: dict[str, int] = {}
        self._lock = threading.Lock()

    def opened(self, path: str) -> None:
        key = os.path.abspath(path)
        with self._lock:
            self._users[key] = self._users.get(key, 0) + 1

    def closed(self, path: str) -> None:
        key = os.path.abspath(path)
        with self._lock:
            self._users[key] = self._users.get(key, 1) - 1
            last = self._users[key] <= 0
            if last:
                del self._users[key]
        if last:
            try:
                from milvus_lite.server_manager import server_manager_instance
            except ImportError:  # another Lite release: it stops at process exit
                return
            server_manager_instance.release_server(key)


LITE_FILES = _LiteFiles()
"""The one count per process, as Milvus Lite's own servers are one per file per process."""


def is_milvus_lite(uri: str) -> bool:
    """A local file (Milvus Lite in this process), not a server's URI."""
    return not uri.startswith(SERVER_SCHEMES)


def milvus_name(collection: str, field: str) -> str:
    """Milvus names allow letters, digits and underscores only."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", f"{collection}__{field}")
    return name if name[0].isalpha() or name[0] == "_" else f"c_{name}"


MILVUS_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
"""Milvus's expression strings know these escapes and no ``\\uXXXX``; every other character,
control characters included, stands for itself between the quotes."""


def quoted(text: str) -> str:
    """``text`` as a Milvus expression string literal."""
    return '"' + "".join(MILVUS_ESCAPES.get(ch, ch) for ch in text) + '"'


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return quoted(value)
    raise InputError(
        "Milvus filters take strings, numbers and booleans; got "
        f"{type(value).__name__} ({value!r})",
        field="filter",
    )


def filter_expression(conditions: Mapping[str, Any] | None) -> str:
    """A collection filter (``{"key": value}`` or ``{"key": {"in": [...]}}``) in Milvus syntax."""
    if not conditions:
        return ""
    clauses = []
    for key, condition in conditions.items():
        target = f"meta[{quoted(str(key))}]"
        if isinstance(condition, Mapping):
            values = condition.get("in")
            if set(condition) != {"in"} or not isinstance(values, list):
                raise InputError(
                    'a filter condition is a value or {"in": [values]}', field="filter"
                )
            if not values:
                return 'pid == ""'  # matches nothing, as an empty "in" does locally
            clauses.append("(" + " or ".join(f"{target} == {literal(v)}" for v in values) + ")")
        else:
            clauses.append(f"{target} == {literal(condition)}")
    return " and ".join(clauses)


class MilvusVectors:
    """The vector fields of one collection in Milvus."""

    def __init__(self, uri: str, collection: str) -> None:
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:  # an optional dependency
            raise VectorStoreError(
                "the Milvus vector store needs pymilvus and milvus-lite: "
                "pip install 'omniretrieve[milvus]'"
            ) from exc
        self.uri = uri
        self.collection = collection
        try:
            self._client = MilvusClient(uri=uri, token=os.environ.get(TOKEN_ENV, ""))
        except Exception as exc:
            raise VectorStoreError(f"cannot reach Milvus at {uri}: {exc}") from exc
        self._ready: set[str] = set()
        self._seals = is_milvus_lite(uri)
        self._unsealed: dict[str, int] = {}
        self._open = True
        if self._seals:
            LITE_FILES.opened(uri)

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        try:
            if self._seals:
                self.seal()  # speed only: the rows are already written
        finally:
            self._client.close()
            if self._seals:
                LITE_FILES.closed(self.uri)

    @property
    def client(self) -> Any:
        """The ``MilvusClient`` (for the documents' rows, :mod:`.milvus_documents`)."""
        return self._client

    def name(self, field: str) -> str:
        return milvus_name(self.collection, field)

    def insert_rows(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Insert rows into one of this collection's Milvus collections (sealed as vectors)."""
        self._insert(name, rows)

    def delete_by_document(self, name: str, doc_ids: Sequence[str]) -> None:
        self._delete_from(name, doc_ids)

    def passage_vectors(self, field: str, counts: Mapping[str, int]) -> dict[str, np.ndarray]:
        """Per document (id -> how many passages it has), its passage vectors of ``field`` in
        passage order, read by primary key."""
        name = self._ensure_existing(field)
        pids = [f"{d}{SEPARATOR}{n}" for d, count in counts.items() for n in range(count)]
        found: dict[str, list[tuple[int, Any]]] = {d: [] for d in counts}
        for start in range(0, len(pids), 4 * DELETE_CHUNK):
            chunk = pids[start : start + 4 * DELETE_CHUNK]
            for row in self._client.get(name, ids=chunk, output_fields=["pid", "vector"]):
                doc_id, number = row["pid"].rsplit(SEPARATOR, 1)
                found[doc_id].append((int(number), row["vector"]))
        vectors = {}
        for doc_id, rows in found.items():
            if len(rows) != counts[doc_id]:
                raise VectorStoreError(
                    f"Milvus holds {len(rows)} of the {counts[doc_id]} passage vectors of "
                    f"{doc_id!r} in {field}; reopen the collection for writing to repair it"
                )
            rows.sort(key=lambda row: row[0])
            vectors[doc_id] = np.asarray([v for _, v in rows], dtype=np.float32)
        return vectors

    def _ensure_existing(self, field: str) -> str:
        """A field's Milvus collection, loaded (it exists)."""
        name = milvus_name(self.collection, field)
        if name not in self._ready:
            self._client.load_collection(name)
            self._ready.add(name)
        return name

    def _insert(self, name: str, rows: list[dict[str, Any]]) -> None:
        """Insert vector rows, counted towards the next seal."""
        self._client.insert(name, rows)
        self._unsealed[name] = self._unsealed.get(name, 0) + len(rows)
        if self._seals and sum(self._unsealed.values()) >= SEAL_ROWS:
            self.seal()

    def seal(self, *, bm25: bool = False) -> None:
        """Flush the vector rows inserted since the last seal into sealed, indexed segments:
        done by itself for Milvus Lite in a file (see :data:`SEAL_ROWS`); for a server, only
        when called (a benchmark on ``milvus-lite server``). ``bm25`` flushes the BM25 rows too
        (faster searches, statistics per segment on Lite: for benchmarks)."""
        names = set(self._unsealed)
        if bm25 and milvus_name(self.collection, BM25_FIELD) in self._ready:
            names.add(milvus_name(self.collection, BM25_FIELD))
        for name in sorted(names):
            self._client.flush(name)
        self._unsealed.clear()

    def _row_schema(self) -> Any:
        """What every row holds: its key, its document, the document's version (content and
        metadata) and the metadata (for filters)."""
        from pymilvus import DataType

        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pid", DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=MAX_ID_BYTES)
        schema.add_field("content_hash", DataType.VARCHAR, max_length=128)
        schema.add_field("meta", DataType.JSON)
        return schema

    def _ensure(self, field: str, dimension: int) -> str:
        from pymilvus import DataType

        name = milvus_name(self.collection, field)
        if name in self._ready:
            return name
        if not self._client.has_collection(name):
            schema = self._row_schema()
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
            index = self._client.prepare_index_params()
            index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
            self._client.create_collection(name, schema=schema, index_params=index)
        return self._ensure_existing(field)

    def _ensure_bm25(self, k1: float, b: float) -> str:
        from pymilvus import DataType, Function, FunctionType

        name = milvus_name(self.collection, BM25_FIELD)
        if name in self._ready:
            return name
        if not self._client.has_collection(name):
            schema = self._row_schema()
            schema.add_field(  # already analysed by us: Milvus only splits it at spaces
                "text",
                DataType.VARCHAR,
                max_length=MAX_TEXT_BYTES,
                enable_analyzer=True,
                analyzer_params={"tokenizer": "standard"},
            )
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(
                Function(
                    name="bm25",
                    function_type=FunctionType.BM25,
                    input_field_names=["text"],
                    output_field_names=["sparse"],
                )
            )
            index = self._client.prepare_index_params()
            index.add_index(
                field_name="sparse",
                index_type="SPARSE_INVERTED_INDEX",
                metric_type="BM25",
                params={"bm25_k1": k1, "bm25_b": b},
            )
            self._client.create_collection(name, schema=schema, index_params=index)
        self._client.load_collection(name)
        self._ready.add(name)
        return name

    def upsert_texts(
        self, documents: Iterable[tuple[str, str, Mapping[str, Any], str]], k1: float, b: float
    ) -> None:
        """Replace each document's BM25 row: (doc id, content hash, metadata, analysed text)."""
        name = self._ensure_bm25(k1, b)
        documents = list(documents)
        rows: list[dict[str, Any]] = [
            {"pid": doc_id, "doc_id": doc_id, "content_hash": version, "meta": dict(meta),
             "text": text}
            for doc_id, version, meta, text in documents
        ]  # fmt: skip
        ids = [doc_id for doc_id, *_ in documents]
        for start in range(0, len(ids), DELETE_CHUNK):  # a row per document: by primary key
            self._client.delete(name, ids=ids[start : start + DELETE_CHUNK])
        rows = [row for row in rows if row["text"]]  # nothing to match: no row
        if rows:  # never counted for a seal: one set of BM25 statistics (see SEAL_ROWS)
            self._client.insert(name, rows)

    def search_texts(
        self,
        texts: Sequence[str],
        limit: int,
        conditions: Mapping[str, Any] | None,
        k1: float,
        b: float,
    ) -> list[list[tuple[str, float]]]:
        """Per analysed query text: (document id, BM25 score) best first."""
        name = self._ensure_bm25(k1, b)
        results = self._client.search(
            name,
            data=list(texts),
            anns_field="sparse",
            limit=min(limit, 16_384),
            filter=filter_expression(conditions),
            output_fields=["doc_id"],
            search_params={"metric_type": "BM25"},
        )
        # Milvus Lite reports BM25 as a negative distance, a server as the positive score
        return [
            [(hit["entity"]["doc_id"], abs(float(hit["distance"]))) for hit in hits]
            for hits in results
        ]

    def missing(self, fields: Iterable[str]) -> list[str]:
        """Which of these fields' Milvus collections do not exist."""
        return [
            f for f in fields if not self._client.has_collection(milvus_name(self.collection, f))
        ]

    def drop(self, fields: Iterable[str]) -> None:
        for field in fields:
            name = milvus_name(self.collection, field)
            if self._client.has_collection(name):
                self._client.drop_collection(name)

    def upsert(
        self,
        field: str,
        dimension: int,
        documents: Iterable[tuple[str, str, Mapping[str, Any], np.ndarray]],
        new: Container[str] = frozenset(),
    ) -> None:
        """Replace each document's rows: (doc id, content hash, metadata, passage vectors).
        Documents in ``new`` have no rows (the collection did not hold them), so no delete is
        sent for them: a delete by document id is a filter Milvus Lite answers by scanning
        every row (at 100k-200k rows, three quarters of the write time)."""
        name = self._ensure(field, dimension)
        rows, ids = [], []
        for doc_id, content_hash, metadata, vectors in documents:
            ids.append(doc_id)
            for number, vector in enumerate(np.asarray(vectors, dtype=np.float32)):
                rows.append(
                    {
                        "pid": f"{doc_id}{SEPARATOR}{number}",
                        "doc_id": doc_id,
                        "content_hash": content_hash,
                        "meta": dict(metadata),
                        "vector": vector,
                    }
                )
        self._delete_from(name, [d for d in ids if d not in new])
        if rows:
            self._insert(name, rows)

    def delete(self, doc_ids: Sequence[str], fields: Iterable[str]) -> None:
        for field in fields:
            name = milvus_name(self.collection, field)
            if self._client.has_collection(name):
                self._delete_from(name, doc_ids)

    def _delete_from(self, name: str, doc_ids: Sequence[str]) -> None:
        for start in range(0, len(doc_ids), DELETE_CHUNK):
            chunk = list(doc_ids[start : start + DELETE_CHUNK])
            self._client.delete(name, filter=f"doc_id in {json.dumps(chunk, ensure_ascii=False)}")

    def hashes(self, field: str) -> dict[str, str]:
        """Document id -> content hash of the rows Milvus holds for ``field``."""
        name = milvus_name(self.collection, field)
        if not self._client.has_collection(name):
            return {}
        self._client.load_collection(name)
        found: dict[str, str] = {}
        iterator = self._client.query_iterator(
            name, batch_size=4096, filter="", output_fields=["doc_id", "content_hash"]
        )
        while True:
            batch = iterator.next()
            if not batch:
                iterator.close()
                return found
            for row in batch:
                found[row["doc_id"]] = row["content_hash"]

    def differences(self, field: str, local: Mapping[str, str]) -> tuple[list[str], list[str]]:
        """What repairs ``field`` to ``local`` (document id -> version): the documents whose
        rows Milvus must drop (it holds them, ``local`` does not), and those it must be sent
        (missing, or of another version)."""
        remote = self.hashes(field)
        stale = [d for d in remote if d not in local]
        return stale, [d for d, version in local.items() if remote.get(d) != version]

    def search(
        self,
        field: str,
        queries: np.ndarray,
        limit: int,
        conditions: Mapping[str, Any] | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Per query: (document id, inner product) of the best passages, best first."""
        name = milvus_name(self.collection, field)
        if not self._client.has_collection(name):
            return [[] for _ in queries]
        self._ensure(field, int(queries.shape[1]))
        results = self._client.search(
            name,
            data=[q.astype(np.float32) for q in queries],
            limit=min(limit, 16_384),
            filter=filter_expression(conditions),
            output_fields=["doc_id"],
            search_params={"metric_type": "IP"},
        )
        return [
            [(hit["entity"]["doc_id"], float(hit["distance"])) for hit in hits] for hits in results
        ]


def row_version(content_hash: str, metadata: Mapping[str, Any]) -> str:
    """What a Milvus row must match: the document's content and its metadata (filters)."""

    payload = content_hash + json.dumps(metadata, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]
