"""SSRF rules: non-public targets are refused before any connection, redirects included."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from omniretrieve.errors import InputError, LimitExceededError
from omniretrieve.runtime.fetch import FetchPolicy, check_url, fetch_url

POLICY = FetchPolicy(timeout_s=5)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/x.png", "non-public"),
        ("http://localhost/x.png", "non-public"),
        ("http://169.254.169.254/latest/meta-data/", "non-public"),
        ("http://10.0.0.5/x.png", "non-public"),
        ("http://192.168.1.1/x.png", "non-public"),
        ("http://172.16.0.1/x.png", "non-public"),
        ("http://[::1]/x.png", "non-public"),
        ("http://[::ffff:127.0.0.1]/x.png", "non-public"),
        ("http://[fe80::1]/x.png", "non-public"),
        ("http://0.0.0.0/x.png", "non-public"),
        ("http://[2002:7f00:1::]/x.png", "non-public"),  # 6to4 wrapping 127.0.0.1
        ("http://[2002:a00:5::1]/x.png", "non-public"),  # 6to4 wrapping 10.0.0.5
        ("http://[fec0::1]/x.png", "non-public"),  # site-local
        ("http://[64:ff9b::a00:5]/x.png", "non-public"),  # NAT64 wrapping 10.0.0.5
        ("file:///etc/passwd", "only http"),
        ("ftp://example.com/x.png", "only http"),
        ("gopher://example.com/", "only http"),
        ("http:///nohost", "no host"),
    ],
)
def test_non_public_and_non_http_targets_are_refused(url: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        check_url(url, POLICY, field="image")


def test_a_hostname_resolving_to_a_private_address_is_refused() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.1.2.3"]  # one bad address is enough to refuse

    with pytest.raises(InputError, match="10.1.2.3"):
        check_url("http://images.example/x.png", POLICY, field="image", resolver=resolver)


def test_a_public_address_passes() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14"]

    assert check_url("https://images.example/x.png", POLICY, field="f", resolver=resolver) == (
        "images.example",
        443,
        "93.184.215.14",
    )


class Recorder(BaseHTTPRequestHandler):
    hits: list[str]
    redirect_to: str | None = None
    body: bytes = b"\x89PNG fake"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.hits.append(self.path)
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def serve(host: str, handler: type[Recorder]) -> Iterator[tuple[HTTPServer, list[str]]]:
    hits: list[str] = []
    handler.hits = hits
    server = HTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def target() -> Iterator[tuple[HTTPServer, list[str]]]:
    yield from serve("127.0.0.1", type("Target", (Recorder,), {}))


def test_loopback_target_is_never_contacted(target) -> None:
    server, hits = target
    with pytest.raises(InputError, match="non-public"):
        fetch_url(f"http://127.0.0.1:{server.server_port}/x.png", POLICY)
    assert hits == []


def test_redirect_to_loopback_is_refused(target) -> None:
    """An allowed host (127.0.0.2, allowed only for this test) redirects to 127.0.0.1."""
    server, hits = target
    redirector_class = type(
        "Redirector",
        (Recorder,),
        {"redirect_to": f"http://127.0.0.1:{server.server_port}/secret"},
    )
    policy = FetchPolicy(timeout_s=5, allowed_networks=("127.0.0.2/32",))
    for redirector, redirector_hits in serve("127.0.0.2", redirector_class):
        with pytest.raises(InputError, match="non-public"):
            fetch_url(f"http://127.0.0.2:{redirector.server_port}/start", policy)
        assert redirector_hits == ["/start"]
    assert hits == []


def test_allowed_network_fetch_and_size_cap() -> None:
    handler = type("Image", (Recorder,), {"body": b"x" * 5000})
    for server, hits in serve("127.0.0.2", handler):
        policy = FetchPolicy(timeout_s=5, allowed_networks=("127.0.0.2/32",))
        url = f"http://127.0.0.2:{server.server_port}/img"
        assert fetch_url(url, policy) == b"x" * 5000
        capped = FetchPolicy(timeout_s=5, allowed_networks=("127.0.0.2/32",), max_bytes=1000)
        with pytest.raises(LimitExceededError, match="larger than 1000 bytes"):
            fetch_url(url, capped)
        assert len(hits) == 2


def test_allowed_hosts_are_fetched_by_name_only() -> None:
    """``--allow-image-host images.internal`` lets that name reach its private address; another
    name resolving to the same address, or the address itself, is still refused."""

    def resolver(host: str, port: int) -> list[str]:
        return ["10.0.0.5"]

    policy = FetchPolicy(allowed_hosts=("Images.Internal",))
    assert check_url("http://images.internal/a.png", policy, field="f", resolver=resolver)[2] == (
        "10.0.0.5"
    )
    for url in ("http://other.internal/a.png", "http://10.0.0.5/a.png"):
        with pytest.raises(InputError, match="non-public"):
            check_url(url, policy, field="f", resolver=resolver)
    with pytest.raises(InputError, match="non-public"):
        check_url("http://images.internal/a.png", FetchPolicy(), field="f", resolver=resolver)


def test_a_server_sending_a_byte_at_a_time_is_cut_off_at_the_deadline() -> None:
    """Each byte arrives well within the per-read timeout: only the deadline on the whole
    fetch ends it (issue 28, item 6)."""
    from tests.builders.drip_server import drip_server

    policy = FetchPolicy(timeout_s=5, deadline_s=1.0, allowed_networks=("127.0.0.1/32",))
    with drip_server(interval_s=0.1, size=100) as (base, _):
        with pytest.raises(InputError, match="longer than 1 s"):
            fetch_url(f"{base}/slow.png", policy)
