"""Starting the app in-process (TestClient) or as a real uvicorn server on loopback."""

from __future__ import annotations

import base64
import io
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import FastAPI

from omniretrieve.server.app import create_app
from omniretrieve.server.config import ServerConfig
from omniretrieve.server.metrics import ServerMetrics
from omniretrieve.server.pool import ModelPool


def loaded_pool(config: ServerConfig) -> ModelPool:
    pool = ModelPool(config, ServerMetrics.create())
    pool.load()
    return pool


def pool_key(config: ServerConfig) -> tuple[object, ...]:
    """The settings a model pool depends on (the rest of a config is the app's)."""
    return (
        config.models,
        config.device,
        config.dtype,
        config.batch_wait_ms,
        config.max_batch_items,
        config.limits.max_pending_items,
        config.aliases,
        config.default_aliases,
    )


class PoolCache:
    """One loaded pool per :func:`pool_key`, shared by every test app of a session (an app
    handed a pool never closes it; the session closes them at its end)."""

    def __init__(self) -> None:
        self._pools: dict[tuple[object, ...], ModelPool] = {}

    def __call__(self, config: ServerConfig) -> ModelPool:
        key = pool_key(config)
        if key not in self._pools:
            self._pools[key] = loaded_pool(config)
        return self._pools[key]

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def png_data_uri(
    width: int = 64, height: int = 48, color: tuple[int, int, int] = (10, 120, 200)
) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(base: str, process: subprocess.Popen | None = None, timeout: float = 120) -> None:
    """Poll /readyz until 200; fail early if ``process`` exits."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"server exited early: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become ready")


@contextmanager
def running_server(config: ServerConfig) -> Iterator[str]:
    """A real uvicorn server in a thread on 127.0.0.1; yields its base URL."""
    with running_app(config) as (base, _):
        yield base


@contextmanager
def running_app(
    config: ServerConfig, pool: ModelPool | None = None
) -> Iterator[tuple[str, FastAPI]]:
    """:func:`running_server` that also yields its app (and may share a loaded pool)."""
    import uvicorn

    port = free_port()
    app = create_app(config, pool=pool)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_ready(base)
    try:
        yield base, app
    finally:
        server.should_exit = True
        thread.join(30)


class ServeProcess:
    """``omniretrieve serve`` run as a user runs it; its stderr is collected as it comes."""

    def __init__(self, process: subprocess.Popen, base: str) -> None:
        self.process = process
        self.base = base
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def serve_process(*flags: str, data_dir: str, env: dict[str, str] | None = None):
    """``omniretrieve serve --port P FLAGS...`` on loopback with its collections under
    ``data_dir``; yields a :class:`ServeProcess` once /readyz answers 200."""
    import os
    import sys

    port = free_port()
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "OMNIRETRIEVE_DATA": data_dir}
    environment.pop("OMNIRETRIEVE_API_KEYS", None)
    environment.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "omniretrieve.cli", "serve", "--port", str(port), *flags],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = ServeProcess(process, f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 180
        while not any(line.startswith("ready: ") for line in served.lines):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not become ready:\n{served.stderr}")
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
