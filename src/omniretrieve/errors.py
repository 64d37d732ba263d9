"""Errors that carry what the CLI and the HTTP server need to report them.

Every error names the offending field where there is one, so that the server can answer
``{"error": {"type", "message", "field"}}`` and the CLI can print one readable line.
"""

from __future__ import annotations

from collections.abc import Iterable


class OmniRetrieveError(Exception):
    """Base class: a problem the caller can act on (never a bug in omniretrieve)."""

    status_code: int = 400
    error_type: str = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        return {"type": self.error_type, "message": self.message, "field": self.field}


class InputError(OmniRetrieveError):
    """The request's content is invalid (empty list, empty text, wrong type, ...)."""

    status_code = 422
    error_type = "invalid_input"


class LimitExceededError(InputError):
    """An input is over a configured limit (count, bytes, pixels, tokens)."""

    status_code = 413
    error_type = "limit_exceeded"


class ModelNotFoundError(OmniRetrieveError):
    """No model of that name exists locally (or on the hub)."""

    status_code = 404
    error_type = "model_not_found"


class CollectionNotFoundError(OmniRetrieveError):
    """No collection of that name exists."""

    status_code = 404
    error_type = "collection_not_found"


class ModelUnavailableError(ModelNotFoundError):
    """The model is not cached locally and the hub cannot be reached."""


class UnsupportedModelError(OmniRetrieveError):
    """The checkpoint exists but no family implemented here can run it."""

    status_code = 422
    error_type = "unsupported_model"


class ModelIntegrityError(OmniRetrieveError):
    """A bundled checkpoint's files do not match their recorded checksums."""

    status_code = 500
    error_type = "model_integrity"


class ShuttingDownError(OmniRetrieveError):
    """Work stopped (or refused) because the process is shutting down."""

    status_code = 503
    error_type = "shutting_down"


class DatasetError(InputError):
    """A dataset file is missing or malformed (the message names the file and line)."""

    error_type = "invalid_dataset"


class NotReadyError(OmniRetrieveError):
    """The server's models are still loading."""

    status_code = 503
    error_type = "not_ready"


class ClientDisconnectedError(OmniRetrieveError):
    """The client went away before its answer was ready (nginx's 499; nobody reads it)."""

    status_code = 499
    error_type = "client_disconnected"


class QueueFullError(OmniRetrieveError):
    """A model's queue holds as much as it may; retry after ``retry_after_s``."""

    status_code = 429
    error_type = "queue_full"

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TuningCancelledError(OmniRetrieveError):
    """A fit stopped before it finished (its client left, its collection was dropped or
    closed, the server is stopping); the collection keeps its previous fit."""

    status_code = 503
    error_type = "tuning_cancelled"


class QueueClosedError(ShuttingDownError):
    """The batching queue was closed (the server is shutting down)."""


class VectorStoreError(OmniRetrieveError):
    """The vector store (Milvus) cannot be reached or refused the request."""

    status_code = 503
    error_type = "vector_store_unavailable"


class CollectionFormatError(OmniRetrieveError):
    """A collection's files are damaged or of another format version."""

    status_code = 500
    error_type = "collection_unreadable"


class CollectionLockedError(OmniRetrieveError):
    """Another process holds the collection's write lock."""

    status_code = 409
    error_type = "collection_locked"


class OcrUnavailableError(OmniRetrieveError):
    """No OCR engine is installed."""

    status_code = 503
    error_type = "ocr_unavailable"


def closest_name(name: str, known: Iterable[str]) -> str | None:
    """The one of ``known`` spelled most like ``name``, if any is close (for "did you mean"
    in errors about a collection or a model that does not exist)."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None
