"""What ``serve`` tells its user: where the page and the API docs are before the models load,
then, once the models answer and the port accepts connections, the model names clients may
send and one ``ready`` line (a script may wait for it instead of polling /readyz)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import typer


def local_url(host: str, port: int) -> str:
    """The URL a browser on this machine opens (0.0.0.0 and :: listen on loopback too)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def starting_lines(version: str, models: list[str], host: str, port: int, keys: str) -> list[str]:
    base = local_url(host, port)
    return [
        f"omniretrieve {version}: loading {', '.join(models)} ({keys})",
        f"  search page  {base}/",
        f"  API docs     {base}/docs  (ReDoc: {base}/redoc)",
    ]


def ready_lines(pool: Any, host: str, port: int) -> list[str]:
    lines = []
    rows = pool.alias_rows()
    if rows:
        width = max(len(name) for name, _ in rows)
        lines.append("model names answered by a served model (--alias; --no-default-aliases):")
        lines += [f"  {name.ljust(width)} -> {model_id}" for name, model_id in rows]
    lines.append(f"ready: {local_url(host, port)}/ answers with {', '.join(pool.model_ids())}")
    return lines


def _accepts(host: str, port: int) -> bool:
    target = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    try:
        with socket.create_connection((target, port), timeout=1):
            return True
    except OSError:
        return False


def announce_when_ready(pool: Any, host: str, port: int, timeout_s: float = 3600) -> None:
    """Print :func:`ready_lines` once the pool is loaded and the port accepts connections
    (or the load error); runs in a daemon thread beside the server."""
    deadline = time.monotonic() + timeout_s
    while not pool.ready.wait(0.2):
        if pool.load_error is not None:
            typer.echo(f"error: models failed to load: {pool.load_error}", err=True)
            return
        if time.monotonic() > deadline:
            return
    while not _accepts(host, port):
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)
    for line in ready_lines(pool, host, port):
        typer.echo(line, err=True)


def start_announcer(pool: Any, host: str, port: int) -> None:
    threading.Thread(
        target=announce_when_ready, args=(pool, host, port), name="ready-announcer", daemon=True
    ).start()
