"""The HTTP server of ``hookline serve``: uvicorn's, with a gentler start to shutting down."""

from __future__ import annotations

import asyncio
import socket
from types import FrameType

import uvicorn
from litestar import Litestar

__all__ = ["StoppingServer"]


class StoppingServer(uvicorn.Server):
    """uvicorn's server, which on SIGTERM (or SIGINT) first marks the gateway as stopping
    (webhooks 503 + Retry-After, /readyz 503), keeps answering for ``delay`` seconds so that
    load balancers take it out of rotation, and only then shuts down as uvicorn does: stop
    listening, finish the requests in flight, then the lifespan (drain the spool, close)."""

    def __init__(self, config: uvicorn.Config, app: Litestar, delay: float) -> None:
        super().__init__(config)
        self.app = app
        self.delay = delay
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delayed = False

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        runtime = self.app.state.get("runtime")  # absent before startup
        if runtime is not None:
            runtime.stopping = True
        if self.delay <= 0 or self._delayed or self._loop is None:
            super().handle_exit(sig, frame)  # a second signal: stop now
            return
        self._delayed = True
        later = super().handle_exit
        self._loop.call_soon_threadsafe(self._loop.call_later, self.delay, later, sig, None)
