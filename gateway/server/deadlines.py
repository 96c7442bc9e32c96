"""A header-read deadline for uvicorn's httptools protocol.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but holds a connection
that has started, and never finished, its request headers for as long as the client likes
(slowloris). ``header_deadline_protocol(seconds)`` returns a subclass of uvicorn's
``HttpToolsProtocol`` that arms a timer when the connection opens and when each request
begins, disarms it once the headers are complete, and answers 408 and closes the connection
when it fires. It is selected with ``uvicorn.Config(http=...)``.

The body has its own deadline where the body is read (``gateway.routes.webhooks``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.errors import problem_body
from gateway.settings import ServerSettings

__all__ = ["HeaderDeadlineProtocol", "header_deadline_protocol"]

log = structlog.get_logger("hookline.server")

_TIMEOUT_BODY = problem_body(408, "Request Timeout", "the request headers took too long")
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/problem+json\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n\r\n" + _TIMEOUT_BODY
)


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with a deadline on reading each request's headers."""

    #: seconds a client has to send a complete request head (set by the factory)
    header_timeout: float = ServerSettings().header_read_timeout_seconds

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm_header_deadline(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        log.debug("http.header_deadline_exceeded", timeout_seconds=self.header_timeout)
        if self.cycle is None or self.cycle.response_complete:
            # nothing is being answered on this connection: say why, then close it
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_deadline()  # a client that connects and says nothing

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)


def header_deadline_protocol(seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with a ``seconds`` header
    deadline."""
    if seconds <= 0:
        raise ValueError("the header deadline must be positive")
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": seconds})
