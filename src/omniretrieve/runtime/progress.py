"""Progress on stderr for long encodes, indexing and evaluation: a rich bar on a terminal,
and plain lines at a steady interval otherwise (nohup, CI, a log file), so a long run is never
silent."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

REDRAW_SECONDS = 0.1
"""Steps are handed to the bar at most this often (per-query calls cost more than a search)."""
PLAIN_SECONDS = float(os.environ.get("OMNIRETRIEVE_PROGRESS_SECONDS", "10"))
"""Without a terminal: one progress line this often (and one at the end)."""


def amount(value: float, unit: str | None) -> str:
    """A count as people read it: ``1234`` (items), ``12.3k chars``, ``4.5 MB``."""
    if unit is None:
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    scaled, prefix = float(value), ""
    for step in ("k", "M", "G"):
        if abs(scaled) < 1000:
            break
        scaled, prefix = scaled / 1000, step
    number = f"{scaled:.1f}" if prefix else f"{scaled:.0f}"
    return f"{number} {prefix}B" if unit == "B" else f"{number}{prefix} {unit}"


def _rate(done: float, elapsed: float, unit: str | None) -> str:
    """An honest rate: none until a second of work and some done (a first step that found
    nothing to do is not a speed)."""
    if elapsed < 1.0 or done <= 0:
        return "rate unknown"
    return f"{amount(done / elapsed, unit)}/s"


@contextmanager
def progress_bar(
    total: int, description: str, *, enabled: bool = True, unit: str | None = None
) -> Iterator[Callable[[int], None]]:
    """Yield a callback that advances the bar; a no-op callback when disabled. ``unit``
    (``"chars"``, ``"B"``) measures work done in that unit instead of counting items."""
    if not enabled or total <= 0:
        yield lambda n: None
        return
    if not sys.stderr.isatty():
        with plain_progress(total, description, sys.stderr, PLAIN_SECONDS, unit) as advance:
            yield advance
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class DoneColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            done = f"{amount(task.completed, unit)}/{amount(task.total or 0, unit)}"
            return Text(f"{done}  {_rate(task.completed, task.elapsed or 0.0, unit)}")

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DoneColumn(),
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
    total: int, description: str, stream: TextIO, every_s: float, unit: str | None = None
) -> Iterator[Callable[[int], None]]:
    """Progress as plain lines (work done, share, rate, time left) every ``every_s``
    seconds."""
    started = time.monotonic()
    done = [0]
    last = [started]

    def line() -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        rate = done[0] / elapsed
        left = (total - done[0]) / rate if rate > 0 else float("inf")
        eta = f"{left:.0f} s left" if left != float("inf") else "time left unknown"
        stream.write(
            f"{description}: {amount(done[0], unit)}/{amount(total, unit)} "
            f"({100 * done[0] / total:.0f}%), {_rate(done[0], elapsed, unit)}, "
            f"{elapsed:.0f} s elapsed, {eta}\n"
        )
        stream.flush()

    said = [-1]

    def advance(n: int) -> None:
        done[0] += n
        now = time.monotonic()
        if now - last[0] >= every_s:
            line()
            last[0], said[0] = now, done[0]

    try:
        yield advance
    finally:
        if said[0] != done[0]:  # the end, unless the last line already said it
            line()
