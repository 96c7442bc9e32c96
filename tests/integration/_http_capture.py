"""A real HTTP server on loopback (in a thread) that records every POST it receives.

Used as a downstream sink, as an Alertmanager webhook receiver and as the re-emission target
of the OTLP receiver: whatever the caller sends is kept verbatim for the test to inspect.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Captured", "CapturedRequest", "capture_server"]


@dataclass(frozen=True)
class CapturedRequest:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Captured:
    """The server's base URL and the requests it got so far (appended from its thread)."""

    url: str
    requests: list[CapturedRequest] = field(default_factory=list)

    def on(self, path: str) -> list[CapturedRequest]:
        return [request for request in self.requests if request.path == path]


class _Handler(http.server.BaseHTTPRequestHandler):
    captured: Captured
    status: int

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.captured.requests.append(CapturedRequest(self.path, headers, body))
        self.send_response(self.status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def capture_server(status: int = 200) -> Iterator[Captured]:
    """Serve on a free 127.0.0.1 port, answering every POST with ``status``."""
    captured = Captured(url="")
    handler = type("Handler", (_Handler,), {"captured": captured, "status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    captured.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="capture-server", daemon=True)
    thread.start()
    try:
        yield captured
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
