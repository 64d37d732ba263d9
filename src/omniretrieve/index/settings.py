"""A collection's settings: what shapes its stored data and how it searches, checked on
create and on every open, saved as ``collection.json``."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from omniretrieve.errors import InputError
from omniretrieve.fusion.methods import FUSION_METHODS
from omniretrieve.index.dense import QUANTIZATIONS
from omniretrieve.index.store import CollectionFormatError, CollectionStore
from omniretrieve.text.analyzers import is_known_language

__all__ = [
    "CollectionSettings",
    "default_root",
    "field_name",
    "list_name",
    "read_settings",
    "settings_json",
]


def default_root() -> Path:
    override = os.environ.get("OMNIRETRIEVE_DATA")
    if override:
        return Path(override) / "collections"
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "omniretrieve" / "collections"


VECTOR_STORE_NAMES = ("faiss", "milvus")
"""The vector stores (:data:`omniretrieve.index.vectors.VECTOR_STORES`, one class each)."""
MAX_EMBEDDERS = 8
"""Vector fields a collection may have (each upsert embeds every document once per field)."""


@dataclass(frozen=True)
class CollectionSettings:
    embedders: tuple[str, ...] = ("all-MiniLM-L6-v2",)
    quantization: str = "float"
    language: str = "auto"
    """BM25 analysis: ``auto`` (each document in its language: ``metadata.lang`` or detected;
    each query in its detected language) or one language for all (``en``, ``german``...)."""
    passage_overlap: int = 32
    passages: Literal["split", "first"] = "split"
    """``split``: long documents become overlapping passages that each fit the embedder;
    ``first``: one vector per document, the model truncating it (as sentence-transformers)."""
    aggregate: Literal["max", "sum"] = "max"
    fusion: Literal["auto", "zscore", "rrf", "zscore-adaptive"] = "auto"
    """``auto``: the method, weights and reranker mix the collection fitted on pseudo-queries
    drawn from its own documents (:mod:`omniretrieve.index.tuning`; z-score fusion with equal
    weights until it has); or one method with ``fusion_weights``."""
    fusion_weights: tuple[float, ...] | None = None
    """BM25's weight first, then one per list of the embedders, in their order: each model's
    dense, learned-sparse and multi-vector lists, those it has (one per embedder for
    single-vector models); None: equal weights (or, with ``auto``, the fitted ones). Given
    weights win over fitted ones."""
    hnsw_threshold: int = 50_000
    rerank_candidates: int = 100
    reranker: str = "omniretrieve-hybrid-reranker"
    vector_store: Literal["faiss", "milvus"] = "faiss"
    """Where dense search runs: faiss in this process, or Milvus (Lite file or a cluster)."""
    milvus_uri: str | None = None
    """Milvus address (``http://host:19530``); None: Milvus Lite in the collection's folder."""
    sparse: Literal["local", "milvus"] = "local"
    """Where BM25 runs: ``local`` (bm25s in this process, built from the documents) or
    ``milvus`` (Milvus's full-text search, with ``vector_store="milvus"``: our process keeps
    no BM25 index)."""
    storage: Literal["folder", "milvus"] = "folder"
    """Where the documents live: ``folder`` (the collection's folder is the source of truth,
    read into memory on open; any store holds a copy) or ``milvus`` (with ``vector_store`` and
    ``sparse`` ``"milvus"``: Milvus alone holds documents, passages and vectors; the folder
    keeps only the settings and a write-ahead log of the writes Milvus has not yet made
    durable, and our process's memory no longer grows with the corpus)."""
    ocr_images: bool = True
    """Documents with an image get the image's OCR text indexed too (text embedders)."""
    ocr_engine: str = "tesseract"

    def validate(self) -> CollectionSettings:
        self._check_types()
        if len(set(self.embedders)) != len(self.embedders):
            raise InputError("embedders names a model twice", field="embedders")
        if len(self.embedders) > MAX_EMBEDDERS:
            raise InputError(
                f"embedders names {len(self.embedders)} models; a collection has at most "
                f"{MAX_EMBEDDERS} vector fields",
                field="embedders",
            )
        if self.vector_store not in VECTOR_STORE_NAMES:
            raise InputError(
                f"vector_store must be one of {', '.join(VECTOR_STORE_NAMES)}", field="vector_store"
            )
        if self.sparse not in ("local", "milvus"):
            raise InputError("sparse must be local or milvus", field="sparse")
        if self.sparse == "milvus" and self.vector_store != "milvus":
            raise InputError(
                'sparse="milvus" runs BM25 in the collection\'s Milvus: set vector_store="milvus"',
                field="sparse",
            )
        if self.storage not in ("folder", "milvus"):
            raise InputError("storage must be folder or milvus", field="storage")
        if self.storage == "milvus" and self.sparse != "milvus":
            raise InputError(
                'storage="milvus" keeps the documents in Milvus alone: set vector_store="milvus" '
                'and sparse="milvus" (BM25 over documents held nowhere else)',
                field="storage",
            )
        if self.quantization not in QUANTIZATIONS:
            raise InputError(
                f"quantization must be one of {', '.join(QUANTIZATIONS)}", field="quantization"
            )
        if self.passages not in ("split", "first"):
            raise InputError("passages must be split or first", field="passages")
        if self.aggregate not in ("max", "sum"):
            raise InputError("aggregate must be max or sum", field="aggregate")
        if self.fusion != "auto" and self.fusion not in FUSION_METHODS:
            raise InputError(
                f"fusion must be auto or one of {', '.join(FUSION_METHODS)}", field="fusion"
            )
        if (
            isinstance(self.rerank_candidates, bool)
            or not isinstance(self.rerank_candidates, int)
            or self.rerank_candidates < 1
        ):
            raise InputError(
                "rerank_candidates must be a positive integer", field="rerank_candidates"
            )
        if self.fusion_weights is not None and any(w < 0 for w in self.fusion_weights):
            raise InputError("fusion_weights must not be negative", field="fusion_weights")
        lists = len(self.embedders), len(FIELD_OUTPUTS) * len(self.embedders)
        if self.fusion_weights is not None and not (
            lists[0] <= len(self.fusion_weights) - 1 <= lists[1]
        ):  # the exact count depends on the models' outputs: checked on searching
            raise InputError(
                "fusion_weights needs one weight for BM25 and one per list of the embedders "
                "(dense, learned-sparse, multi-vector)",
                field="fusion_weights",
            )
        return self

    def _check_types(self) -> None:
        def wrong(name: str, expected: str) -> InputError:
            return InputError(f"{name} must be {expected}", field=name)

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if not isinstance(self.embedders, tuple) or not all(
            isinstance(e, str) and e for e in self.embedders
        ):
            raise wrong("embedders", "a list of model ids (empty: BM25 only)")
        for name in ("quantization", "language", "passages", "aggregate", "fusion", "reranker",
                     "vector_store", "ocr_engine", "sparse", "storage"):  # fmt: skip
            if not isinstance(getattr(self, name), str):
                raise wrong(name, "a string")
        if not is_known_language(self.language) and self.language != "auto":
            raise InputError(
                f"language {self.language!r} is not a language code or name this package "
                "knows (e.g. auto, en, english, de, zh)",
                field="language",
            )
        if not is_int(self.passage_overlap) or self.passage_overlap < 0:
            raise wrong("passage_overlap", "a non-negative integer")
        if not is_int(self.hnsw_threshold) or self.hnsw_threshold < 1:
            raise wrong("hnsw_threshold", "a positive integer")
        if self.fusion_weights is not None and (
            not isinstance(self.fusion_weights, tuple)
            or not all(
                isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w)
                for w in self.fusion_weights
            )
        ):
            raise wrong("fusion_weights", "a list of numbers")
        if self.milvus_uri is not None and not isinstance(self.milvus_uri, str):
            raise wrong("milvus_uri", "a string")
        if not isinstance(self.ocr_images, bool):
            raise wrong("ocr_images", "true or false")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CollectionSettings:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("embedders", "fusion_weights"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        return cls(**values)


def read_settings(store: CollectionStore) -> CollectionSettings:
    """A collection's settings, checked: wrong values are a :class:`CollectionFormatError`
    naming ``collection.json`` (nothing is changed)."""
    raw = store.read_settings()
    try:
        return CollectionSettings.from_json(raw).validate()
    except (InputError, TypeError, ValueError) as exc:
        message = exc.message if isinstance(exc, InputError) else str(exc)
        raise CollectionFormatError(
            f"{store.settings_path} holds a wrong value ({message}); the collection was not "
            "opened or modified (correct the file)"
        ) from exc


def settings_json(settings: CollectionSettings) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()}


SEARCH_TIME_SETTINGS = frozenset(
    {"language", "fusion", "fusion_weights", "rerank_candidates", "reranker"}
)
"""What may change on an existing collection; the rest shapes the stored data."""


def changed_settings(settings: CollectionSettings, changes: dict[str, Any]) -> CollectionSettings:
    """``settings`` with search-time ``changes`` applied and checked."""
    unknown = set(changes) - SEARCH_TIME_SETTINGS
    if unknown:
        raise InputError(
            f"only {', '.join(sorted(SEARCH_TIME_SETTINGS))} can change on an existing "
            f"collection; {', '.join(sorted(unknown))} shape the stored data (create a new "
            "collection)",
            field=sorted(unknown)[0],
        )
    if settings.sparse == "milvus" and changes.get("language", settings.language) != (
        settings.language
    ):
        raise InputError(
            "language cannot change on a collection whose BM25 runs in Milvus: Milvus holds "
            "the documents as analysed in the collection's language (create a new collection)",
            field="language",
        )
    if changes.get("fusion_weights") is not None:
        changes = {**changes, "fusion_weights": tuple(float(w) for w in changes["fusion_weights"])}
    return replace(settings, **changes).validate()


FIELD_OUTPUTS: tuple[str, ...] = ("dense", "sparse", "multivector")
"""The fields a model can give a collection, in the order of its lists
(:data:`omniretrieve.multi_vector.OUTPUTS`)."""


def field_name(model_id: str, output: str = "dense") -> str:
    """The field holding a model's ``output`` per passage (a file and a Milvus name):
    ``dense-<model>`` (one vector per passage), ``sparse-<model>`` (learned token weights:
    one ``(token id, weight)`` row per token, the passage's span repeated) or
    ``multivector-<model>`` (one vector per token, the passage's span repeated)."""
    if output not in FIELD_OUTPUTS:
        raise ValueError(f"output is one of {', '.join(FIELD_OUTPUTS)}, not {output!r}")
    return f"{output}-" + re.sub(r"[^A-Za-z0-9._-]+", "--", model_id)


def list_name(model_id: str, output: str = "dense") -> str:
    """The name of a field's first-stage list and of its score on a hit:
    ``dense:<model>``, ``sparse:<model>``, ``multivector:<model>``."""
    return f"{output}:{model_id}"
