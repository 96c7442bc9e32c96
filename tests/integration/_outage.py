"""Helpers for tests that stop and start their own PostgreSQL (outages, restarts)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from gateway.storage.embedded import EmbeddedPostgres

__all__ = ["restart", "wait_for"]


def restart(server: EmbeddedPostgres) -> None:
    """Start a stopped server again on the same data directory and port."""
    EmbeddedPostgres(server.data_dir, durable=False, port=server.port).start()


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not reached in time")
