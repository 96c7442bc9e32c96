"""Wake dispatchers when new outbox rows are committed: LISTEN on a dedicated connection.

The pooled connections skip their reset query, so LISTEN must never run on one; this task
holds its own connection, and reconnects (with back-off) when it drops. Polling in the
dispatcher still covers retries that become due and any missed notification.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog

from gateway.delivery.outbox import NOTIFY_CHANNEL
from gateway.storage.errors import DB_ERRORS

__all__ = ["OutboxListener"]

log = structlog.get_logger("hookline.delivery")


class OutboxListener:
    def __init__(
        self,
        url: str,
        on_notify: Callable[[], None],
        *,
        check_seconds: float = 5.0,
        retry_max_seconds: float = 30.0,
    ) -> None:
        self.url = url
        self.on_notify = on_notify
        self.check_seconds = check_seconds
        self.retry_max_seconds = retry_max_seconds

    def _notified(self, *_: Any) -> None:
        self.on_notify()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = 1.0
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.url, timeout=10.0)
                await conn.add_listener(NOTIFY_CHANNEL, self._notified)
                backoff = 1.0
                self.on_notify()  # catch anything committed while not listening
                while not stop.is_set() and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=self.check_seconds)
            except DB_ERRORS as exc:
                log.warning("delivery.listen_failed", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(backoff * 2, self.retry_max_seconds)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=5.0)
