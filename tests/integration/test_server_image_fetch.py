"""Slow image servers stall nothing else (issue 28, item 6): image URLs are fetched in a pool
of their own, each fetch has a deadline and each request a budget, so ten URLs that send a
byte at a time neither hold their requests for minutes nor delay a plain text embedding."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from omniretrieve.server.config import Limits, ServerConfig
from tests.builders.drip_server import drip_server
from tests.builders.servers import running_app

pytestmark = pytest.mark.slow


def test_slow_image_servers_stall_nothing_else(server_pool) -> None:
    config = ServerConfig(
        allowed_image_hosts=("127.0.0.1",),
        limits=Limits(max_fetch_seconds=60, max_request_fetch_seconds=2),
    )
    connected = threading.Semaphore(0)
    with drip_server(interval_s=0.5, on_connect=connected.release) as (drip, _):
        with running_app(config, server_pool(config)) as (base, _app):
            with httpx.Client(base_url=base, timeout=60) as client, ThreadPoolExecutor(10) as pool:
                slow = [
                    pool.submit(
                        client.post,
                        "/v1/embeddings",
                        json={"input": [{"image": f"{drip}/{i}.png"}]},
                    )
                    for i in range(10)
                ]
                for _ in range(8):  # the fetch pool's threads are all held by the drip
                    assert connected.acquire(timeout=30)
                text = httpx.post(
                    f"{base}/v1/embeddings", json={"input": "a plain text"}, timeout=10
                )
                assert text.status_code == 200, text.text
                for future in slow:  # each within its request's budget, an error naming it
                    answer = future.result()
                    assert answer.status_code == 422, answer.text
                    assert answer.json()["error"]["field"] == "input[0]", answer.text
                    assert "longer than 2 s" in answer.json()["error"]["message"]
