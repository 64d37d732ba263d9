"""Progress bars on stderr (rich) for long encodes, indexing and evaluation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

REDRAW_SECONDS = 0.1
"""Steps are handed to the bar at most this often (per-query calls cost more than a search)."""


@contextmanager
def progress_bar(
    total: int, description: str, *, enabled: bool = True
) -> Iterator[Callable[[int], None]]:
    """Yield a callback that advances the bar; a no-op callback when disabled."""
    if not enabled or total <= 0:
        yield lambda n: None
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
