"""`omniretrieve serve` as a process: binds loopback by default, keys from env, graceful stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx

from tests.integration.server_helpers import free_port, wait_ready


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
                json={"input": [f"passage number {i} " * 40 for i in range(600)]},
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
        assert results == {"status": 200, "count": 600}
        # uvicorn finishes the shutdown, then exits through the signal it caught
        assert process.wait(60) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read() if process.stderr else ""  # type: ignore[union-attr]
    assert f"http://127.0.0.1:{port}" in stderr  # loopback unless --host says otherwise
    assert "env-key" not in stderr and "file-key" not in stderr  # keys never logged
