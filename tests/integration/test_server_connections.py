"""A real uvicorn server on loopback: work of clients that left is dropped, idle and
half-sent connections are closed (issue 13, items 6 and 9)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from omniretrieve.server.app import create_app
from omniretrieve.server.config import ServerConfig
from omniretrieve.server.connections import timed_protocol
from tests.builders.servers import free_port, wait_ready


@pytest.fixture(scope="module")
def served(server_pool):
    config = ServerConfig(max_batch_items=8)
    pool = server_pool(config)
    app = create_app(config, pool=pool)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            http=timed_protocol(header_timeout_s=1.0, body_idle_timeout_s=1.0),
            timeout_keep_alive=1,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_ready(base)
    yield base, port, pool
    server.should_exit = True
    thread.join(30)


@contextmanager
def gated(queue) -> Iterator[tuple[threading.Event, list[int]]]:
    """Hold the queue's worker at a gate; record the size of each batch it runs."""
    gate = threading.Event()
    sizes: list[int] = []
    original = queue._process

    def process(payloads: Sequence) -> list:
        gate.wait(60)
        sizes.append(sum(len(p.inputs) for p in payloads))
        return original(payloads)

    queue._process = process
    try:
        yield gate, sizes
    finally:
        gate.set()
        queue._process = original


def raw_request(port: int, body: dict) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    data = json.dumps(body).encode()
    head = (
        f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    sock.sendall(head + data)
    return sock


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_work_of_disconnected_clients_is_dropped(served) -> None:
    base, port, pool = served
    loaded = next(iter(pool.embedders.values()))
    queue = loaded.queue
    with gated(queue) as (gate, sizes):
        first = raw_request(port, {"input": ["held at the gate"]})
        assert wait_for(lambda: queue.pending_cost == 1 and queue.queued_jobs() == 0)
        leaving = [raw_request(port, {"input": [f"text {i}"] * 500}) for i in range(3)]
        assert wait_for(lambda: queue.pending_cost == 1501)
        assert queue.queued_jobs() == 3 * 63  # queued in jobs of max_batch_items (8) inputs
        for sock in leaving:
            sock.close()
        assert wait_for(lambda: queue.pending_cost == 1), queue.pending_cost
        gate.set()
        first.settimeout(30)
        assert b"200 OK" in first.recv(65536)
        first.close()
        one = httpx.post(f"{base}/v1/embeddings", json={"input": "still served"}, timeout=30)
        assert one.status_code == 200
    assert sizes == [1, 1]  # the 1,500 texts of the clients that left never reached the model


def test_a_large_request_is_answered_whole_from_its_chunks(served) -> None:
    base, _, pool = served
    texts = [f"text number {i} about {'cats' if i % 2 else 'stocks'}" for i in range(50)]
    response = httpx.post(f"{base}/v1/embeddings", json={"input": texts}, timeout=60)
    assert response.status_code == 200
    data = response.json()["data"]
    assert [row["index"] for row in data] == list(range(50))
    model = next(iter(pool.embedders.values())).model
    import numpy as np

    from omniretrieve.inputs import parse_inputs

    expected = model.encode(parse_inputs([*texts[:3], texts[49]])).vectors

    got = np.array([data[i]["embedding"] for i in (0, 1, 2, 49)], dtype=np.float32)
    expected = expected / np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def closed_by_server(sock: socket.socket, within: float = 20.0) -> bool:
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except (TimeoutError, ConnectionResetError):
        return False


@pytest.mark.parametrize(
    "sent",
    [
        b"",  # connects, says nothing
        b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n",  # half the headers
        b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 100\r\n\r\n{"input": ',  # half the body
    ],
    ids=["idle", "half-headers", "half-body"],
)
def test_idle_and_half_sent_connections_are_closed(served, sent) -> None:
    _, port, _ = served
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(sent)
    assert closed_by_server(sock)
    sock.close()


def test_kept_alive_connections_close_when_idle(served) -> None:
    _, port, _ = served
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    sock.settimeout(20)
    assert b"200 OK" in sock.recv(4096)
    assert closed_by_server(sock)
    sock.close()


def test_a_running_batch_whose_client_left_stops_at_its_next_model_batch(server_pool) -> None:
    """Issue 28, item 9: a 64-text request (one job, four model batches of 16 long texts)
    whose client leaves once the model started stops after the model batch under way."""
    from tests.builders.servers import running_app

    config = ServerConfig()
    pool = server_pool(config)
    loaded = next(iter(pool.embedders.values()))
    started, encoded = threading.Event(), []
    real = loaded.model.encode

    def spied(inputs, **options):
        progress = options.get("progress")

        def counted(done: int) -> None:
            encoded.append(done)
            if progress is not None:
                progress(done)

        started.set()
        return real(inputs, **{**options, "progress": counted})

    text = " ".join(f"word{i} cells membrane protein" for i in range(80))  # > 256 tokens
    with running_app(config, pool) as (base, _), pytest.MonkeyPatch.context() as patch:
        patch.setattr(loaded.model, "encode", spied)
        port = int(base.rsplit(":", 1)[1])
        sock = raw_request(port, {"input": [f"{i} {text}" for i in range(64)]})
        assert started.wait(60)
        sock.close()
        assert wait_for(lambda: loaded.queue.pending_cost == 0, 120)
        assert 0 < sum(encoded) < 64, encoded  # stopped after the model batch under way
        one = httpx.post(f"{base}/v1/embeddings", json={"input": "still served"}, timeout=30)
        assert one.status_code == 200
