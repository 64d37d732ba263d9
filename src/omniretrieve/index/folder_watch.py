"""Following a folder: sync it, then again after each burst of changes (debounced;
:func:`~omniretrieve.index.folder_sync.sync_folder` converts only what changed). Uses
watchfiles (inotify, FSEvents, ReadDirectoryChangesW).

The watcher starts before the first sync, so a change made while that sync runs, or just
after it, is never missed: it triggers the next one."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("omniretrieve.watch")
SETTLE_SECONDS = 0.3
"""Time the watcher is given to register before the first sync."""


def watch_folder(
    folder: Path,
    sync: Callable[[], None],
    *,
    debounce_ms: int = 800,
    stop: threading.Event | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> None:
    """Call ``sync`` now and after each burst of changes under ``folder``, until ``stop`` is
    set or Ctrl-C. A sync that fails is reported and the watch goes on (the next change
    retries it; what was acknowledged before the failure is kept)."""
    import watchfiles

    stop = stop or threading.Event()
    bursts: queue.Queue[Any] = queue.Queue()

    def follow() -> None:
        try:
            for changes in watchfiles.watch(
                folder,
                debounce=max(1, debounce_ms),
                step=50,
                stop_event=stop,
                rust_timeout=500,
                yield_on_timeout=False,
                raise_interrupt=False,
                recursive=True,
            ):
                bursts.put(changes)
        finally:
            bursts.put(None)

    watcher = threading.Thread(target=follow, name="folder-watch", daemon=True)
    watcher.start()
    time.sleep(SETTLE_SECONDS)
    try:
        _run(sync, on_error)
        while True:
            try:
                burst = bursts.get(timeout=0.5)
            except queue.Empty:
                if stop.is_set():
                    break
                continue
            if burst is None:
                break
            while not bursts.empty():  # bursts that came meanwhile: one sync covers them
                if bursts.get_nowait() is None:
                    stop.set()
            _run(sync, on_error)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        watcher.join(timeout=5)


def _run(sync: Callable[[], None], on_error: Callable[[Exception], None] | None) -> None:
    try:
        sync()
    except Exception as exc:  # keep watching: a file mid-write, a transient error
        if on_error is not None:
            on_error(exc)
        else:
            log.error("sync failed: %s: %s", type(exc).__name__, exc)
