"""A child process that ingests a corpus and is killed at a chosen moment (crash tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def crash_embedder(model_dir: str | Path) -> Any:
    """The embedder of the crash tests, in float32 on every CPU: they compare stored vectors
    with fresh ones exactly, and where ``dtype="auto"`` is bf16 (CPUs with native bf16) a
    batch's composition changes the numbers (issue 28, item 10)."""
    from omniretrieve import Embedder

    return Embedder(model_dir, dtype="float32")


def run_and_kill(
    root: Path,
    model_dir: str,
    corpus: Path,
    delay: float | None,
    limit: int,
    storage: str = "folder",
) -> set[str]:
    """Start the child, SIGKILL it ``delay`` seconds after it is ready (None: let it finish);
    return the ids it acknowledged."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.builders.crash_child",
            str(root),
            model_dir,
            str(corpus),
            "16",
            str(limit),
            storage,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    acknowledged: set[str] = set()
    ready = threading.Event()

    def read() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("READY"):
                ready.set()
            elif line.startswith("ACK "):
                acknowledged.update(json.loads(line[4:]))
        ready.set()

    reader = threading.Thread(target=read)
    reader.start()
    ready.wait(180)  # the model is loaded and the collection open: now kill at random
    if delay is None:
        child.wait(600)
    else:
        time.sleep(delay)
    if child.poll() is None:
        child.send_signal(signal.SIGKILL)
    child.wait()
    reader.join()
    if child.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(child.stderr.read() if child.stderr else "child failed")
    return acknowledged
