"""`omniretrieve serve` as a process: binds loopback by default, keys from env, graceful stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx

from tests.builders.servers import free_port, wait_ready


def test_serve_defaults_keys_and_graceful_shutdown(tmp_path) -> None:
    port = free_port()
    key_file = tmp_path / "keys"
    key_file.write_text("# keys\nfile-key\n")
    env = {**os.environ, "OMNIRETRIEVE_API_KEYS": "env-key", "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omniretrieve.cli",
            "serve",
            "--port",
            str(port),
            "--api-key-file",
            str(key_file),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        for key in ("env-key", "file-key"):
            response = httpx.post(
                f"{base}/v1/embeddings",
                json={"input": "x"},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert response.status_code == 200
        assert httpx.post(f"{base}/v1/embeddings", json={"input": "x"}).status_code == 401

        # an in-flight request finishes although SIGTERM arrives while it runs
        results: dict[str, int] = {}

        def slow_request() -> None:
            response = httpx.post(
                f"{base}/v1/embeddings",
                json={"input": [f"passage number {i} " * 40 for i in range(300)]},
                headers={"Authorization": "Bearer env-key"},
                timeout=120,
            )
            results["status"] = response.status_code
            results["count"] = len(response.json()["data"])

        worker = threading.Thread(target=slow_request)
        worker.start()
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        worker.join(120)
        assert results == {"status": 200, "count": 300}
        # uvicorn finishes the shutdown, then exits through the signal it caught
        assert process.wait(60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read() if process.stderr else ""  # type: ignore[union-attr]
    assert f"http://127.0.0.1:{port}" in stderr  # loopback unless --host says otherwise
    assert "env-key" not in stderr and "file-key" not in stderr  # keys never logged


def test_sigterm_during_a_long_upsert_exits_in_bounded_time(tmp_path) -> None:
    """A long collection upsert does not hold SIGTERM hostage: after uvicorn's 30 s grace the
    upsert stops at its next embedding chunk, acknowledged batches stay, the process exits."""
    import pytest

    from omniretrieve.index.collection import Collection

    port = free_port()
    root = tmp_path / "collections"
    process = subprocess.Popen(
        [sys.executable, "-m", "omniretrieve.cli", "serve", "--port", str(port), "--no-bundled",
         "-m", "all-MiniLM-L6-v2", "--collections-root", str(root)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, process)
        assert httpx.post(f"{base}/v1/collections", json={"name": "big"}).status_code == 201
        words = " ".join(f"word{i}" for i in range(400))
        documents = [{"id": f"d{i}", "text": f"{i} {words}"} for i in range(1000)]  # ~10 min

        def upsert() -> None:
            try:
                httpx.put(
                    f"{base}/v1/collections/big/documents",
                    json={"documents": documents},
                    timeout=600,
                )
            except httpx.HTTPError:
                pass  # the server went away: expected

        threading.Thread(target=upsert, daemon=True).start()
        time.sleep(5)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(150)
        except subprocess.TimeoutExpired:
            pytest.fail("the server did not exit within 150 s of SIGTERM")
        assert time.monotonic() - started < 150
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with Collection.open("big", root=root) as collection:  # intact: every batch whole
        assert len(collection) < 1000
        for doc_id in collection.document_ids()[:5]:
            assert collection.vectors(doc_id) is not None
