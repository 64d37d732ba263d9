from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

import pytest

from omniretrieve.runtime.queue import BatchingQueue, QueueClosedError, QueueFullError


def test_concurrent_jobs_are_merged_and_results_split() -> None:
    batches: list[list[int]] = []

    def process(payloads: Sequence[int]) -> list[int]:
        batches.append(list(payloads))
        return [p * 10 for p in payloads]

    queue: BatchingQueue[int, int] = BatchingQueue("t", process, max_wait_s=5, max_batch_cost=100)
    with queue.expecting():  # a request on its way: the first batch waits for it
        futures = [queue.submit(i, cost=1) for i in range(8)]
    assert [f.result(timeout=10) for f in futures] == [i * 10 for i in range(8)]
    assert batches[0] == list(range(8))
    queue.close()


def test_a_lone_job_does_not_wait_for_the_window() -> None:
    queue: BatchingQueue[int, int] = BatchingQueue("t", lambda p: list(p), max_wait_s=60)
    assert queue.submit(7, cost=1).result(timeout=10) == 7  # far sooner than the 60 s window
    queue.close()


def test_jobs_with_different_keys_are_not_merged() -> None:
    batches: list[list[str]] = []

    def process(payloads: Sequence[str]) -> list[str]:
        batches.append(list(payloads))
        return list(payloads)

    queue: BatchingQueue[str, str] = BatchingQueue("t", process, max_wait_s=0.1)
    futures = [queue.submit(f"{key}{i}", cost=1, key=key) for i in range(3) for key in "ab"]
    for future in futures:
        future.result(timeout=5)
    for batch in batches:
        assert len({item[0] for item in batch}) == 1
    queue.close()


def test_batch_cost_is_bounded() -> None:
    sizes: list[int] = []

    def process(payloads: Sequence[int]) -> list[int]:
        sizes.append(sum(payloads))
        return list(payloads)

    queue: BatchingQueue[int, int] = BatchingQueue("t", process, max_wait_s=0.1, max_batch_cost=10)
    futures = [queue.submit(4, cost=4) for _ in range(6)]
    for future in futures:
        future.result(timeout=5)
    assert max(sizes) <= 10
    queue.close()


def test_full_queue_refuses_instead_of_growing() -> None:
    release = threading.Event()

    def process(payloads: Sequence[int]) -> list[int]:
        release.wait(5)
        return list(payloads)

    queue: BatchingQueue[int, int] = BatchingQueue(
        "t", process, max_wait_s=0.0, max_batch_cost=1, max_pending_cost=3
    )
    accepted = [queue.submit(1, cost=1) for _ in range(3)]
    with pytest.raises(QueueFullError) as info:
        queue.submit(1, cost=1)
    assert info.value.status_code == 429 and info.value.retry_after_s >= 1
    release.set()
    assert [f.result(timeout=5) for f in accepted] == [1, 1, 1]
    queue.submit(1, cost=1).result(timeout=5)  # room again
    queue.close()


def test_one_failing_job_does_not_fail_its_neighbours() -> None:
    def process(payloads: Sequence[int]) -> list[int]:
        if -1 in payloads:
            raise ValueError("bad payload")
        return list(payloads)

    queue: BatchingQueue[int, int] = BatchingQueue("t", process, max_wait_s=0.2, max_batch_cost=100)
    good, bad, other = (queue.submit(v, cost=1) for v in (1, -1, 2))
    assert good.result(timeout=5) == 1 and other.result(timeout=5) == 2
    with pytest.raises(ValueError, match="bad payload"):
        bad.result(timeout=5)
    queue.close()


def test_close_finishes_accepted_work_then_refuses() -> None:
    def process(payloads: Sequence[int]) -> list[int]:
        time.sleep(0.05)
        return list(payloads)

    queue: BatchingQueue[int, int] = BatchingQueue("t", process, max_wait_s=0.0, max_batch_cost=1)
    futures = [queue.submit(i, cost=1) for i in range(5)]
    queue.close(timeout=10)
    assert [f.result(timeout=0) for f in futures] == list(range(5))
    with pytest.raises(QueueClosedError):
        queue.submit(9, cost=1)


def held_queue() -> tuple[BatchingQueue[int, int], threading.Event, list[int], Future[int]]:
    """A queue whose worker holds job 0 at a gate; the payloads it ran; job 0's future."""
    gate = threading.Event()
    seen: list[int] = []

    def process(payloads: Sequence[int]) -> list[int]:
        gate.wait(10)
        seen.extend(payloads)
        return list(payloads)

    queue: BatchingQueue[int, int] = BatchingQueue("t", process, max_batch_cost=1)
    running = queue.submit(0, cost=1)
    deadline = time.monotonic() + 10
    while queue.queued_jobs() and time.monotonic() < deadline:
        time.sleep(0.01)
    return queue, gate, seen, running


def test_cancelled_jobs_leave_the_queue_and_are_never_run() -> None:
    queue, gate, seen, running = held_queue()
    waiting = [queue.submit(i, cost=100) for i in range(1, 4)]
    assert queue.pending_cost == 301
    assert queue.cancel(waiting[0]) and queue.cancel(waiting[2])
    assert queue.pending_cost == 101 and waiting[0].cancelled()
    assert not queue.cancel(running)  # already running: it finishes
    gate.set()
    assert running.result(timeout=10) == 0 and waiting[1].result(timeout=10) == 2
    assert seen == [0, 2]
    queue.close()


def test_retry_after_follows_the_backlog() -> None:
    queue: BatchingQueue[int, int] = BatchingQueue("t", lambda p: list(p), max_pending_cost=10)
    assert queue.retry_after_s() == 1  # nothing measured, nothing waiting
    queue.record_throughput(items=100, seconds=2.0)  # 50 items/s
    queue._pending_cost = 1000  # 20 s of work waiting
    assert queue.retry_after_s() == 20
    with pytest.raises(QueueFullError) as refused:
        queue.submit(1, cost=5)
    assert refused.value.retry_after_s == 20
    queue._pending_cost = 0
    queue.close()


def test_futures_cancelled_by_their_callers_never_break_the_worker() -> None:
    """A caller may cancel its future directly (asyncio.wrap_future does, when the awaiting
    task is cancelled): a queued job is then skipped, a running one cannot be cancelled, and
    the worker thread lives on."""
    queue, gate, seen, running = held_queue()
    waiting = queue.submit(1, cost=1)
    assert not running.cancel()  # running: too late
    assert waiting.cancel()  # still queued: cancelled, and it must never run
    gate.set()
    assert running.result(timeout=10) == 0
    assert queue.submit(2, cost=1).result(timeout=10) == 2  # the worker is alive
    assert seen == [0, 2] and queue.pending_cost == 0
    queue.close()


def test_an_abandoned_running_batch_stops_at_its_next_check() -> None:
    """Issue 28, item 9: ``abandon`` marks a running job; once every job of the batch is
    marked, the process function's next ``check_abandoned`` ends it, and nobody retries."""
    from omniretrieve.errors import ClientDisconnectedError

    steps: list[str] = []
    started, gate = threading.Event(), threading.Event()

    def process(payloads: Sequence[str]) -> list[str]:
        for step in range(10):
            queue.check_abandoned()
            steps.append(f"{payloads[0]}{step}")
            if payloads == ["x"] and step == 0:
                started.set()
                gate.wait(10)
        return list(payloads)

    queue: BatchingQueue[str, str] = BatchingQueue("t", process)
    future = queue.submit("x", cost=1)
    assert started.wait(10)
    queue.abandon(future)
    gate.set()
    with pytest.raises(ClientDisconnectedError):
        future.result(timeout=10)
    assert steps == ["x0"]
    assert queue.submit("y", cost=1).result(timeout=10) == "y"  # the next job runs whole
    assert steps[1:] == [f"y{i}" for i in range(10)]
    queue.close()


def test_a_batch_goes_on_while_one_of_its_clients_is_still_there() -> None:
    from omniretrieve.errors import ClientDisconnectedError

    started, gate = threading.Event(), threading.Event()

    def process(payloads: Sequence[int]) -> list[int]:
        started.set()
        gate.wait(10)
        queue.check_abandoned()
        return [p * 2 for p in payloads]

    queue: BatchingQueue[int, int] = BatchingQueue("t", process, max_wait_s=5)
    with queue.expecting():
        leaving, staying = queue.submit(1, cost=1), queue.submit(2, cost=1)
    assert started.wait(10)
    queue.abandon(leaving)
    gate.set()
    assert staying.result(timeout=10) == 4
    assert leaving.result(timeout=10) == 2  # computed anyway: it shared the batch
    assert not isinstance(leaving.exception(), ClientDisconnectedError)
    queue.close()
