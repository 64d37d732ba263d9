"""Stopping a fit between its steps: a fit asks ``should_stop()`` between its stages and its
pseudo-queries and, when told to, raises :class:`TuningCancelledError` (the collection keeps
its last fit; nothing was written)."""

from __future__ import annotations

from collections.abc import Callable

from omniretrieve.errors import TuningCancelledError

ShouldStop = Callable[[], bool]


def never() -> bool:
    return False


def checkpoint(should_stop: ShouldStop) -> None:
    if should_stop():
        raise TuningCancelledError("the fit was cancelled; the collection keeps its last fit")
