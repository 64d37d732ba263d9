"""``--server URL``: ``search`` and ``index`` sent to a running ``omniretrieve serve`` over its
HTTP API instead of loading the models in this process (the server's collections, its loaded
models, an answer in milliseconds). Errors are the server's own messages, one line each."""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from omniretrieve.errors import InputError, OmniRetrieveError

SERVER_ENV = "OMNIRETRIEVE_SERVER"
API_KEY_ENV = "OMNIRETRIEVE_API_KEY"
BATCH_DOCUMENTS = 500
"""Documents per PUT (the server's default limit is 1000)."""
COUNTS = ("added", "updated", "unchanged", "embedded_passages")
"""The counts of an upsert report, summed over the batches sent."""
BATCH_BYTES = 8 * 1024 * 1024
"""Bytes of files per upload (the server's default body limit is 32 MiB)."""


class RemoteServer:
    def __init__(self, url: str, api_key: str | None = None, timeout: float = 600.0) -> None:
        import httpx

        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> RemoteServer:
        return self

    def __exit__(self, *_: object) -> None:
        self._client.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """The JSON answer of a 2xx; a 4xx is an :class:`InputError` with the server's message
        (and field), anything else an :class:`OmniRetrieveError`."""
        import httpx

        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise OmniRetrieveError(
                f"cannot reach the server at {self.url} ({type(exc).__name__}: {exc}); is "
                "`omniretrieve serve` running there?"
            ) from exc
        if response.is_success:
            return response.json()
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        message = error.get("message") or response.text[:300] or response.reason_phrase
        text = f"{self.url} answered {response.status_code}: {message}"
        if 400 <= response.status_code < 500:
            raise InputError(text, field=error.get("param"))
        raise OmniRetrieveError(text)

    # -- collections --------------------------------------------------------------------
    def ensure_collection(self, name: str, settings: dict[str, Any]) -> bool:
        """Create the collection unless the server has it; True when created."""
        names = self.call("GET", "/v1/collections")["collections"]
        if name in names:
            return False
        self.call("POST", "/v1/collections", json={"name": name, **settings})
        return True

    def search(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("POST", f"/v1/collections/{name}/search", json=body)
        return answer

    def count(self, name: str) -> int:
        return int(self.call("GET", f"/v1/collections/{name}")["documents"])

    def upsert(self, name: str, documents: list[Any], advance: Any = None) -> dict[str, Any]:
        totals: dict[str, Any] = dict.fromkeys(COUNTS, 0)
        for start in range(0, len(documents), BATCH_DOCUMENTS):
            batch = documents[start : start + BATCH_DOCUMENTS]
            report = self.call(
                "PUT", f"/v1/collections/{name}/documents", json={"documents": batch}
            )
            _add_counts(totals, report)
            if advance is not None:
                advance(len(batch))
        return totals

    def upload(
        self, name: str, files: Iterable[tuple[str, Path]], advance: Any = None
    ) -> dict[str, Any]:
        """Files through ``POST .../files`` (the server's one ingest), a batch of at most
        :data:`BATCH_BYTES` at a time; ids are the files' paths relative to what was indexed."""
        totals: dict[str, Any] = {**dict.fromkeys(COUNTS, 0), "skipped": []}
        for batch in _batches(files):
            parts = [("files", (relative, data, _media_type(relative))) for relative, data in batch]
            report = self.call("POST", f"/v1/collections/{name}/files", files=parts)
            _add_counts(totals, report)
            totals["skipped"] += report.get("skipped", [])
            if advance is not None:
                advance(sum(len(data) for _, data in batch))
        return totals


def _add_counts(totals: dict[str, Any], report: dict[str, Any]) -> None:
    for key in COUNTS:
        totals[key] += int(report.get(key, 0))


def _batches(files: Iterable[tuple[str, Path]]) -> Iterator[list[tuple[str, bytes]]]:
    batch: list[tuple[str, bytes]] = []
    size = 0
    for relative, path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot read: {exc.strerror}", field="from") from exc
        if batch and (size + len(data) > BATCH_BYTES or len(batch) >= BATCH_DOCUMENTS):
            yield batch
            batch, size = [], 0
        batch.append((relative, data))
        size += len(data)
    if batch:
        yield batch


def _media_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def image_data_uri(path: Path) -> str:
    """A query image as the server reads it (the server never reads a client's path)."""
    kind = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode()
