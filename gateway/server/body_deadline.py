"""A body-read deadline for routes whose body Litestar reads (the admin API).

The webhook route reads its body itself and bounds it there (``gateway.routes.webhooks``).
Routes that go through Litestar read it through ASGI ``receive``: this middleware gives the
whole body ``[server] body_read_timeout_seconds`` from the moment the request reaches the
app (its head is complete); a ``receive`` still waiting after that raises a 408 problem
(``Connection: close``, so the half-sent request does not linger on the connection).
"""

from __future__ import annotations

import asyncio

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from gateway.errors import ProblemError

__all__ = ["body_deadline_middleware"]

log = structlog.get_logger("hookline.server")


def body_deadline_middleware(app: ASGIApp) -> ASGIApp:
    """Wrap ``app`` so that reading an HTTP request's body has a deadline."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        seconds: float = scope[
            "litestar_app"
        ].state.runtime.settings.server.body_read_timeout_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds

        async def receive_before_deadline() -> ReceiveMessage:
            try:
                async with asyncio.timeout_at(deadline):
                    return await receive()
            except TimeoutError:
                log.warning(
                    "http.body_deadline_exceeded", path=scope["path"], timeout_seconds=seconds
                )
                raise ProblemError(
                    408,
                    "Request Timeout",
                    f"the body did not arrive within {seconds:g} seconds",
                    headers={"Connection": "close"},
                ) from None

        await app(scope, receive_before_deadline, send)

    return middleware
