"""Reading JSON-lines files (corpora, queries, image sets): a malformed line is an error
naming the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omniretrieve.errors import DatasetError


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-blank line."""
    if not path.is_file():
        raise DatasetError(f"{path} does not exist", field=str(path))
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise DatasetError(
                    f"{path}:{number}: not valid JSON ({exc})", field=str(path)
                ) from exc
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{number}: expected a JSON object", field=str(path))
            yield number, record
