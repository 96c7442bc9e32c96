"""The loop of the background workers (rollup compactor, activity folder, retention,
delivery gauges): one step every interval until ``stop``; a step that fails on the
database or the network is logged and tried again at the next tick."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.storage.errors import DB_ERRORS

__all__ = ["TRANSIENT_ERRORS", "BackgroundTask", "run_periodically"]

#: a long-running coroutine that returns when ``stop`` is set (``Runtime.add_background``)
BackgroundTask = Callable[[asyncio.Event], Awaitable[None]]

#: failures worth a warning and another try: the database or the network is away
TRANSIENT_ERRORS = DB_ERRORS


async def run_periodically(
    step: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    interval_seconds: float,
    *,
    log: Any,
    failure_event: str,
) -> None:
    """Await ``step()``, then wait ``interval_seconds`` (or until ``stop``), until ``stop``
    is set; a transient failure is logged as ``failure_event`` with its type only."""
    while not stop.is_set():
        try:
            await step()
        except TRANSIENT_ERRORS as exc:
            log.warning(failure_event, error=type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
