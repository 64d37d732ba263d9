"""Connection timeouts uvicorn does not have: a client that opens a connection and sends no
request, or sends its headers or body a byte at a time, is disconnected instead of holding a
connection (and, with its body half-sent, a request) forever.

- headers: a request's headers must arrive complete within ``header_timeout_s`` of the
  connection opening (or of the first byte of a next request on a kept-alive connection);
- body: a request body may pause at most ``body_idle_timeout_s`` between two reads;
- idle kept-alive connections close after uvicorn's ``timeout_keep_alive``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class TimedH11Protocol(H11Protocol):
    header_timeout_s: float = 10.0
    body_idle_timeout_s: float = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._read_timer: asyncio.TimerHandle | None = None
        self._arm(self.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.SEND_BODY:
            self._arm(self.body_idle_timeout_s, restart=True)
        elif state is h11.IDLE and self.timeout_keep_alive_task is None:
            self._arm(self.header_timeout_s)  # part of a next request's headers: a deadline
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        self._disarm()  # uvicorn's keep-alive timer takes over
        super().on_response_complete()

    def _arm(self, seconds: float, *, restart: bool = False) -> None:
        if self._read_timer is not None:
            if not restart:
                return
            self._read_timer.cancel()
        self._read_timer = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        timer = getattr(self, "_read_timer", None)
        if timer is not None:
            timer.cancel()
            self._read_timer = None

    def _timed_out(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def timed_protocol(header_timeout_s: float, body_idle_timeout_s: float) -> Any:
    """The protocol class to hand uvicorn (``Config(http=...)``) with these timeouts."""
    return type(
        "TimedH11Protocol",
        (TimedH11Protocol,),
        {"header_timeout_s": header_timeout_s, "body_idle_timeout_s": body_idle_timeout_s},
    )
