"""An image server that sends its body a byte at a time (issue 28, item 6): each read gets
a byte well within any per-read timeout, so only a deadline on the whole fetch ends it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def drip_server(
    host: str = "127.0.0.1",
    interval_s: float = 0.2,
    size: int = 10_000,
    on_connect: Callable[[], object] = lambda: None,
) -> Iterator[tuple[str, threading.Event]]:
    """Yields its base URL and an event that, once set, ends every drip (the rest of the
    body is never sent); ``on_connect()`` is called as each request arrives."""
    stop = threading.Event()

    class Drip(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            on_connect()
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            for _ in range(size):
                if stop.wait(interval_s):
                    return
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:
                    return  # the client went away

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Drip)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}", stop
    finally:
        stop.set()
        time.sleep(0.05)
        server.shutdown()
        server.server_close()
