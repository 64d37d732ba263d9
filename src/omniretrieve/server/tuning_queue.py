"""Fits in a queue of their own: ``POST /v1/collections/{name}/tune`` and the refits that
upserts make due never run in the collection threads that answer searches and writes.

- One thread fits, one collection at a time; at most one fit per collection is pending or
  running (a second request joins it; a refit asked for while one is queued is dropped, the
  next upsert asks again if still due); at most ``max_pending`` fits wait in all (then a 429).
- A fit holds its collection's lock only to take a snapshot of the documents and to save
  the result (:func:`~omniretrieve.index.tuning.self_tune.tune_guarded`): searches and writes
  of that collection go on while it is computed.
- A fit is cancelled (between its steps) when every client that asked for it has left, when
  its collection is dropped or closed, and at shutdown; the collection keeps its last fit.
- A refit never turns the upsert that made it due into an error: it runs after the upsert
  answered, and its failures are logged.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from omniretrieve.errors import QueueFullError
from omniretrieve.index.tuning.self_tune import refit_guarded, tune_guarded

log = logging.getLogger("omniretrieve.server")
MAX_PENDING_FITS = 8


@dataclass
class TuningJob:
    name: str
    refit: bool
    """Asked for by an upsert (no client waits for it)."""
    stop: threading.Event = field(default_factory=threading.Event)
    future: Future[Any] = field(default_factory=Future)
    waiters: int = 0


class TuningQueue:
    def __init__(self, max_pending: int = MAX_PENDING_FITS) -> None:
        self.max_pending = max_pending
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="tuning")
        self._jobs: dict[str, TuningJob] = {}
        self._guard = threading.Lock()
        self._stopping = threading.Event()

    def _pending(self) -> int:
        return sum(1 for job in self._jobs.values() if not job.future.done())

    def tune(self, entry: Any) -> TuningJob:
        """A fit of ``entry``'s collection for a client (joined, if one is under way); the
        caller :meth:`leave` s it when done waiting."""
        name = entry.collection.name
        with self._guard:
            job = self._jobs.get(name)
            joinable = job is not None and not job.refit and not job.stop.is_set()
            if job is not None and joinable and not job.future.done():
                job.waiters += 1
                return job
            if self._pending() >= self.max_pending:
                raise QueueFullError(
                    f"{self._pending()} fits are waiting; try again later", retry_after_s=5
                )
            if job is not None:
                job.stop.set()  # a refit under way: this full fit replaces it
            job = self._start(TuningJob(name, refit=False, waiters=1), entry)
            return job

    def refit(self, entry: Any) -> None:
        """Queue the refit an upsert made due (dropped when a fit of that collection is
        already waiting or running, or when the queue is full)."""
        name = entry.collection.name
        with self._guard:
            job = self._jobs.get(name)
            if job is not None and not job.future.done():
                return
            if self._pending() >= self.max_pending or self._stopping.is_set():
                log.warning(
                    "collection %s: refit not queued (%d fits waiting)", name, self._pending()
                )
                return
            self._start(TuningJob(name, refit=True), entry)

    def _start(self, job: TuningJob, entry: Any) -> TuningJob:
        self._jobs[job.name] = job

        def should_stop() -> bool:
            return job.stop.is_set() or self._stopping.is_set()

        def run() -> None:
            if not job.future.set_running_or_notify_cancel():
                return
            try:
                if job.refit:
                    result: Any = refit_guarded(
                        entry.collection, entry.held, should_stop=should_stop
                    )
                else:
                    result = tune_guarded(entry.collection, entry.held, should_stop=should_stop)
            except BaseException as exc:  # handed to the client waiting for it
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)

        self._executor.submit(run)
        return job

    def leave(self, job: TuningJob) -> None:
        """A client stops waiting for ``job``; the last one to leave an unfinished fit
        cancels it."""
        with self._guard:
            job.waiters -= 1
            if job.waiters <= 0 and not job.refit and not job.future.done():
                job.stop.set()
                job.future.cancel()  # not started yet: it never starts

    def cancel(self, name: str, timeout: float = 60.0) -> None:
        """Stop the fit of ``name`` (dropped or closed) and wait for it to end."""
        with self._guard:
            job = self._jobs.pop(name, None)
        if job is not None:
            job.stop.set()
            _wait(job, timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Cancel every fit, wait for the one running, and stop taking new ones."""
        self._stopping.set()
        with self._guard:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            job.stop.set()
            job.future.cancel()  # a fit not started yet never starts
        for job in jobs:
            _wait(job, timeout)
        self._executor.shutdown(wait=False)


def _wait(job: TuningJob, timeout: float) -> None:
    try:
        job.future.exception(timeout)
    except Exception:  # cancelled before it ran, or still running after the timeout
        pass
