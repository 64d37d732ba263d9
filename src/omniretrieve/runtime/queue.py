"""Dynamic batching for concurrent requests, off the event loop and bounded.

Requests are submitted as jobs with a *cost* (inputs or documents) and a *merge key*. One worker
thread per queue takes the oldest job and runs it together with the queued jobs of the same key
while their total cost stays within ``max_batch_cost``; jobs with other keys wait for the next
round. Under load the queue fills while the model runs, so batches form by themselves. Callers
announce a request that is on its way (parsing, validating) with ``expecting()``; while any is
announced the worker waits up to ``max_wait_s`` for it to join the batch. A lone request never
waits. When the pending cost would exceed
``max_pending_cost`` a submission is refused with :class:`QueueFullError` (the server answers
429 with a Retry-After derived from the backlog and the measured throughput) instead of letting
the queue grow without limit. A queued job whose caller went away is taken out with
``cancel()`` and never runs; ``abandon()`` also stops a running batch at its next model batch
once every job in it was abandoned (the process function asks :meth:`BatchingQueue.check_abandoned`
between its model batches), so a client that leaves frees the model within one model batch.
``close()`` stops new submissions and finishes what was already accepted.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from omniretrieve.errors import ClientDisconnectedError
from omniretrieve.errors import QueueClosedError as QueueClosedError
from omniretrieve.errors import QueueFullError as QueueFullError

P = TypeVar("P")
R = TypeVar("R")


@dataclass
class _Job(Generic[P, R]):
    payload: P
    cost: int
    key: Hashable
    future: Future[R] = field(default_factory=Future)
    abandoned: bool = False
    """Its caller left while it ran (see :meth:`BatchingQueue.abandon`)."""


class BatchingQueue(Generic[P, R]):
    def __init__(
        self,
        name: str,
        process: Callable[[Sequence[P]], Sequence[R]],
        *,
        max_wait_s: float = 0.005,
        max_batch_cost: int = 256,
        max_pending_cost: int = 8192,
        on_batch: Callable[[int, int], None] | None = None,
        on_idle: Callable[[], object] | None = None,
    ) -> None:
        """``process`` maps payloads to results, one each, in order. ``on_batch(jobs, cost)``
        is called after each batch (for metrics); ``on_idle()`` when the queue runs empty."""
        self.name = name
        self._process = process
        self._max_wait_s = max_wait_s
        self._max_batch_cost = max_batch_cost
        self._max_pending_cost = max_pending_cost
        self._on_batch = on_batch
        self._on_idle = on_idle
        self._jobs: deque[_Job[P, R]] = deque()
        self._running: list[_Job[P, R]] = []
        self._pending_cost = 0
        self._items_per_s: float | None = None
        """Measured throughput (a moving average over batches), for Retry-After."""
        self._expected = 0
        self._closed = False
        self._cond = threading.Condition()
        self._worker = threading.Thread(target=self._run, name=f"batcher-{name}", daemon=True)
        self._worker.start()

    @property
    def pending_cost(self) -> int:
        """Cost of the jobs waiting or running (jobs their callers cancelled not counted)."""
        with self._cond:
            self._purge_cancelled()
            return self._pending_cost

    def _purge_cancelled(self) -> None:
        """Drop queued jobs whose future was cancelled (call under the lock)."""
        if any(job.future.cancelled() for job in self._jobs):
            kept = deque(job for job in self._jobs if not job.future.cancelled())
            self._pending_cost -= sum(job.cost for job in self._jobs) - sum(j.cost for j in kept)
            self._jobs = kept

    def queued_jobs(self) -> int:
        """Jobs waiting (not yet taken by the worker)."""
        with self._cond:
            return len(self._jobs)

    def record_throughput(self, items: int, seconds: float) -> None:
        rate = items / max(seconds, 1e-6)
        previous = self._items_per_s
        self._items_per_s = rate if previous is None else 0.7 * previous + 0.3 * rate

    def retry_after_s(self) -> int:
        """Seconds until the work queued now is likely done (1 to 3,600)."""
        rate = self._items_per_s
        if rate is None or self._pending_cost <= 0:
            return 1
        return int(min(3600, max(1, math.ceil(self._pending_cost / rate))))

    def cancel(self, future: Future[R]) -> bool:
        """Take a queued job out (its caller went away): True if it was still waiting, and
        then it never runs; a job already running finishes."""
        with self._cond:  # taken jobs are marked running under this lock: cancel() fails
            if not future.cancel():
                return False
            self._purge_cancelled()
            self._cond.notify_all()
            return True

    def abandon(self, future: Future[R]) -> None:
        """The caller of ``future`` left: a queued job never runs (:meth:`cancel`); a running
        one is marked, and its batch stops at its next check once all its jobs are."""
        with self._cond:
            if self.cancel(future):
                return
            for job in self._running:
                if job.future is future:
                    job.abandoned = True

    def check_abandoned(self) -> None:
        """Raise :class:`ClientDisconnectedError` when every job of the running batch was
        abandoned (the process function calls this before and between its model batches;
        from the worker thread)."""
        with self._cond:
            if self._running and all(job.abandoned for job in self._running):
                raise ClientDisconnectedError("every client of this batch disconnected")

    def submit(self, payload: P, *, cost: int, key: Hashable = None) -> Future[R]:
        job: _Job[P, R] = _Job(payload, max(cost, 1), key)
        with self._cond:
            if self._closed:
                raise QueueClosedError(f"{self.name}: the server is shutting down")
            self._purge_cancelled()
            if self._pending_cost > 0 and self._pending_cost + job.cost > self._max_pending_cost:
                wait = self.retry_after_s()
                raise QueueFullError(
                    f"{self.name}: {self._pending_cost} items are waiting (limit "
                    f"{self._max_pending_cost}); retry in about {wait} s",
                    retry_after_s=wait,
                )
            self._jobs.append(job)
            self._pending_cost += job.cost
            self._cond.notify()
        return job.future

    @contextmanager
    def expecting(self) -> Iterator[None]:
        """Announce a request that will be submitted shortly (so a batch may wait for it)."""
        with self._cond:
            self._expected += 1
        try:
            yield
        finally:
            with self._cond:
                self._expected -= 1
                self._cond.notify_all()

    def close(self, timeout: float | None = None) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join(timeout)

    # -- worker -------------------------------------------------------------------------
    def _take_batch(self) -> list[_Job[P, R]] | None:
        """The next batch (empty when all its jobs were cancelled meanwhile); None once
        closed and drained. Taken jobs are marked running: their callers can no longer
        cancel them."""
        with self._cond:
            self._purge_cancelled()
            while not self._jobs and not self._closed:
                self._cond.wait()
                self._purge_cancelled()
            if not self._jobs:
                return None
            deadline = time.monotonic() + self._max_wait_s
            while True:
                batch, cost = self._select()
                remaining = deadline - time.monotonic()
                if (
                    cost >= self._max_batch_cost
                    or remaining <= 0
                    or self._closed
                    or self._expected == 0
                ):
                    break
                self._cond.wait(remaining)  # an announced request is about to arrive
            taken = []
            for job in batch:
                self._jobs.remove(job)
                if job.future.set_running_or_notify_cancel():
                    taken.append(job)
                else:  # cancelled by its caller since the purge
                    self._pending_cost -= job.cost
            return taken

    def _select(self) -> tuple[list[_Job[P, R]], int]:
        first = self._jobs[0]
        batch, cost = [first], first.cost
        for job in list(self._jobs)[1:]:
            if job.key == first.key and cost + job.cost <= self._max_batch_cost:
                batch.append(job)
                cost += job.cost
        return batch, cost

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            if not batch:
                continue
            cost = sum(job.cost for job in batch)
            started = time.perf_counter()
            with self._cond:
                self._running = batch
            try:
                self._deliver(batch)
            finally:
                self.record_throughput(cost, time.perf_counter() - started)
                with self._cond:
                    self._running = []
                    self._pending_cost -= cost
                    idle = not self._jobs
                if self._on_batch is not None:
                    self._on_batch(len(batch), cost)
                if idle and self._on_idle is not None:
                    self._on_idle()

    def _deliver(self, batch: list[_Job[P, R]]) -> None:
        try:
            results = self._process([job.payload for job in batch])
        except ClientDisconnectedError as exc:  # every caller left: nobody to retry for
            for job in batch:
                job.future.set_exception(exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            # one bad job must not fail its neighbours: retry them one by one
            for job in batch:
                with self._cond:
                    self._running = [job]
                self._deliver([job])
            return
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)

    def __enter__(self) -> BatchingQueue[P, R]:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
