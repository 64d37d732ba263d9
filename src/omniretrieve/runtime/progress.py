"""Progress on stderr for long encodes, indexing and evaluation: a rich bar on a terminal,
and plain lines at a steady interval otherwise (nohup, CI, a log file), so a long run is never
silent."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

REDRAW_SECONDS = 0.1
"""Steps are handed to the bar at most this often (per-query calls cost more than a search)."""
PLAIN_SECONDS = float(os.environ.get("OMNIRETRIEVE_PROGRESS_SECONDS", "10"))
"""Without a terminal: one progress line this often (and one at the end)."""


@contextmanager
def progress_bar(
    total: int, description: str, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yield a callback that advances the bar; a no-op callback when disabled."""
    if not enabled or total <= 0:
        yield lambda n: None
        return
    if not sys.stderr.isatty():
        with plain_progress(total, description, sys.stderr, PLAIN_SECONDS) as advance:
            yield advance
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        pending = [0]
        last = [time.monotonic()]

        def advance(n: int) -> None:
            # rich takes a lock and samples the speed per call: hand it steps in bunches
            pending[0] += n
            now = time.monotonic()
            if now - last[0] >= REDRAW_SECONDS:
                bar.advance(task, pending[0])
                pending[0], last[0] = 0, now

        try:
            yield advance
        finally:
            if pending[0]:
                bar.advance(task, pending[0])


@contextmanager
def plain_progress(
    total: int, description: str, stream: TextIO, every_s: float
) -> Iterator[Callable[[int], None]]:
    """Progress as plain lines (count, share, rate, time left) every ``every_s`` seconds."""
    started = time.monotonic()
    done = [0]
    last = [started]

    def line() -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        rate = done[0] / elapsed
        left = (total - done[0]) / rate if rate > 0 else float("inf")
        eta = f"{left:.0f} s left" if left != float("inf") else "time left unknown"
        stream.write(
            f"{description}: {done[0]}/{total} ({100 * done[0] / total:.0f}%), "
            f"{rate:.1f}/s, {elapsed:.0f} s elapsed, {eta}\n"
        )
        stream.flush()

    def advance(n: int) -> None:
        done[0] += n
        now = time.monotonic()
        if now - last[0] >= every_s:
            line()
            last[0] = now

    try:
        yield advance
    finally:
        line()
