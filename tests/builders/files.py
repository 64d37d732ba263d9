"""Checking that files did not change."""

from __future__ import annotations

import hashlib
from pathlib import Path


def fingerprint(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` (except the lock file) with its sha256."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "LOCK"
    }
