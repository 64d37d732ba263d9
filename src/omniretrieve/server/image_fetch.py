"""Image URLs of a request, fetched before its model work: concurrently, in a bounded pool of
fetch threads of their own (never the event loop's default pool, which token counting and
image decoding share), each unique URL once, through a bounded cache.

Three bounds keep slow image servers from stalling anything else: each fetch has a deadline
(``max_fetch_seconds``, however slowly the server sends), a request's fetches together have a
budget (``max_request_fetch_seconds``: past it the request is answered with an error naming
the field, its fetches run out on their own deadline), and at most ``max_pending_fetches``
URLs are being fetched or waiting for a thread (then a 429).

The cache maps a URL to the sha256 of what it returned and keeps each distinct content once,
least recently used first out when ``max_bytes`` is exceeded; an entry older than ``ttl_s`` is
fetched again. Fetched bytes pass the same byte and pixel limits as inline images before any
model sees them, and the SSRF policy (with the deployment's ``--allow-image-host`` names)
applies to every fetch and redirect.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from omniretrieve.errors import InputError, QueueFullError
from omniretrieve.inputs import ImageInput, Input, MixedInput, open_image
from omniretrieve.runtime.fetch import FetchPolicy, fetch_url
from omniretrieve.server.config import Limits

DEFAULT_TTL_S = 600.0
FETCH_THREADS = 8
"""Image URLs fetched at once (the rest wait for a thread, within the request's budget)."""


def is_url(image: ImageInput) -> bool:
    return isinstance(image.source, str) and image.source.startswith(("http://", "https://"))


class ImageFetcher:
    def __init__(
        self, policy: FetchPolicy, limits: Limits, max_bytes: int, ttl_s: float = DEFAULT_TTL_S
    ) -> None:
        self.policy = policy
        self.limits = limits
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.fetches = 0
        """URLs actually fetched (not served from the cache)."""
        self._urls: dict[str, tuple[str, float]] = {}  # url -> (content hash, fetched at)
        self._blobs: OrderedDict[str, bytes] = OrderedDict()  # content hash -> bytes, LRU
        self._size = 0
        self._inflight: dict[str, Future[bytes]] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="image-fetch")
        self._pending = 0

    def close(self) -> None:
        """Drop waiting fetches; running ones end at their deadline. A fresh pool takes new
        ones (an app whose lifespan runs again)."""
        stopped = self._executor
        self._executor = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="image-fetch")
        stopped.shutdown(wait=False, cancel_futures=True)

    async def prefetch(self, items: Sequence[tuple[str, Input]]) -> list[Input]:
        """``items`` (field name, input) with every image URL replaced by its bytes."""
        wanted: dict[str, str] = {}  # url -> the first field naming it
        for field, item in items:
            image = item.image if isinstance(item, MixedInput) else item
            if isinstance(image, ImageInput) and is_url(image):
                wanted.setdefault(str(image.source), field)
        if not wanted:
            return [item for _, item in items]
        fetched = await self._fetch_all(wanted)
        data = dict(zip(wanted, fetched, strict=True))
        out: list[Input] = []
        for _, item in items:
            image = item.image if isinstance(item, MixedInput) else item
            if isinstance(image, ImageInput) and is_url(image):
                replaced = ImageInput(data[str(image.source)])
                item = MixedInput(item.text, replaced) if isinstance(item, MixedInput) else replaced
            out.append(item)
        return out

    async def _fetch_all(self, wanted: dict[str, str]) -> list[bytes]:
        """``wanted`` (url -> field) fetched in the fetch threads, within the request's budget."""
        with self._lock:
            if self._pending + len(wanted) > self.limits.max_pending_fetches:
                raise QueueFullError(
                    f"{self._pending} image URLs are being fetched (limit "
                    f"{self.limits.max_pending_fetches}); retry shortly",
                    retry_after_s=5,
                )
            self._pending += len(wanted)
        started = [self._executor.submit(self.get, url, field) for url, field in wanted.items()]
        for future in started:  # counted until its thread is done with it (or it never ran)
            future.add_done_callback(self._done)
        budget = self.limits.max_request_fetch_seconds
        try:
            gathered = asyncio.gather(*(asyncio.wrap_future(f) for f in started))
            return list(await asyncio.wait_for(gathered, budget))
        except TimeoutError:
            for future in started:
                future.cancel()  # waiting: never runs; running: ends at its own deadline
            raise InputError(
                f"{next(iter(wanted.values()))}: fetching this request's image URLs took longer "
                f"than {budget:g} s",
                field=next(iter(wanted.values())),
            ) from None

    def _done(self, _: Future[bytes]) -> None:
        with self._lock:
            self._pending -= 1

    def get(self, url: str, field: str) -> bytes:
        """The bytes behind ``url``: from the cache, from a fetch already under way, or
        fetched now (and checked against the image limits)."""
        with self._lock:
            cached = self._cached(url)
            if cached is not None:
                return cached
            running = self._inflight.get(url)
            if running is None:
                running = self._inflight[url] = Future()
                owner = True
            else:
                owner = False
        if not owner:
            return running.result()
        try:
            data = fetch_url(url, self.policy, field=field)
            open_image(  # a bomb or garbage behind a URL is refused like an inline one
                data,
                field=field,
                max_bytes=self.limits.max_image_bytes,
                max_pixels=self.limits.max_image_pixels,
            )
        except BaseException as exc:
            with self._lock:
                del self._inflight[url]
            running.set_exception(exc)
            raise
        with self._lock:
            self.fetches += 1
            self._store(url, data)
            del self._inflight[url]
        running.set_result(data)
        return data

    def _cached(self, url: str) -> bytes | None:
        entry = self._urls.get(url)
        if entry is None:
            return None
        digest, fetched_at = entry
        if time.monotonic() - fetched_at > self.ttl_s or digest not in self._blobs:
            del self._urls[url]
            return None
        self._blobs.move_to_end(digest)
        return self._blobs[digest]

    def _store(self, url: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return  # larger than the whole cache: used once, not kept
        digest = hashlib.sha256(data).hexdigest()
        self._urls[url] = (digest, time.monotonic())
        if digest not in self._blobs:
            self._blobs[digest] = data
            self._size += len(data)
        self._blobs.move_to_end(digest)
        while self._size > self.max_bytes and self._blobs:
            _, evicted = self._blobs.popitem(last=False)
            self._size -= len(evicted)
