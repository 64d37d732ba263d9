"""Following a folder: after each burst of changes (debounced), sync it again
(:func:`~omniretrieve.ingest.folder_sync.sync_folder` converts only what changed). Uses
watchfiles (inotify, FSEvents, ReadDirectoryChangesW; polling where none works)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("omniretrieve.watch")


def watch_folder(
    folder: Path,
    sync: Callable[[], None],
    *,
    debounce_ms: int = 800,
    stop: threading.Event | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> None:
    """Call ``sync`` after each burst of changes under ``folder`` until ``stop`` is set or
    Ctrl-C. A sync that fails is logged and the watch goes on (the next change retries it:
    what was acknowledged before the failure is kept)."""
    import watchfiles

    for _changes in watchfiles.watch(
        folder,
        debounce=max(1, debounce_ms),
        step=50,
        stop_event=stop,
        raise_interrupt=False,
        recursive=True,
    ):
        try:
            sync()
        except Exception as exc:  # keep watching: a file mid-write, a transient error
            if on_error is not None:
                on_error(exc)
            else:
                log.error("sync of %s failed: %s: %s", folder, type(exc).__name__, exc)
