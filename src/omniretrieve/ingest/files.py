"""Walking a folder for ingest: which files, and why some are skipped.

Symlinks are followed only while they stay inside the folder (a link to ``~/.ssh`` or ``/etc``
is reported, not read), unless the caller asks to follow every link. Each skipped file is
reported with its reason; the rest are ingested.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

OUTSIDE = "symlink to a path outside the folder: not followed (--follow-symlinks to index it)"


@dataclass(frozen=True)
class SkippedFile:
    path: str
    error: str


def folder_files(
    folder: Path,
    wanted: Callable[[Path], bool],
    *,
    skipped: list[SkippedFile],
    follow_symlinks: bool = False,
) -> Iterator[Path]:
    """Files under ``folder`` that ``wanted`` accepts, in sorted order."""
    base = folder.resolve()
    for directory, subdirectories, names in os.walk(folder, followlinks=follow_symlinks):
        current = Path(directory)
        subdirectories.sort()
        for name in list(subdirectories):
            path = current / name
            if path.is_symlink() and not follow_symlinks and not _inside(path, base):
                skipped.append(SkippedFile(str(path.relative_to(folder)), OUTSIDE))
        for name in sorted(names):
            path = current / name
            if not wanted(path):
                continue
            if path.is_symlink() and not follow_symlinks and not _inside(path, base):
                skipped.append(SkippedFile(str(path.relative_to(folder)), OUTSIDE))
                continue
            if path.is_file():
                yield path


def _inside(path: Path, base: Path) -> bool:
    try:
        return path.resolve().is_relative_to(base)
    except OSError:  # a link loop or a dangling link
        return False
