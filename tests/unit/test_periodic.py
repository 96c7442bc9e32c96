"""``run_periodically``: the background workers' loop."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from gateway.periodic import run_periodically


class RecordingLog:
    def __init__(self) -> None:
        self.warnings: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.warnings.append((event, fields))


async def test_a_transient_failure_is_logged_and_the_next_tick_runs() -> None:
    """A step failing with a database or network error is logged by type (no message, no
    secrets) and the loop carries on until stop is set."""
    stop = asyncio.Event()
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionRefusedError("postgres://user:secret@db")
        if calls == 3:
            stop.set()

    log = RecordingLog()
    await asyncio.wait_for(
        run_periodically(step, stop, 0.001, log=log, failure_event="worker.failed"), 5
    )
    assert calls == 3
    assert log.warnings == [("worker.failed", {"error": "ConnectionRefusedError"})]


async def test_a_connection_the_server_ended_mid_query_is_transient() -> None:
    """asyncpg's InternalClientError ("cannot switch to state ..."), left by a session the
    server ended during a fast shutdown, is a database failure to retry, not a crash with a
    traceback (it was once: seen as background.crashed in the container test)."""
    stop = asyncio.Event()
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise asyncpg.InternalClientError("cannot switch to state 12")
        stop.set()

    log = RecordingLog()
    await asyncio.wait_for(
        run_periodically(step, stop, 0.001, log=log, failure_event="worker.failed"), 5
    )
    assert calls == 2
    assert log.warnings == [("worker.failed", {"error": "InternalClientError"})]


async def test_a_set_stop_ends_the_wait_at_once() -> None:
    """Stop set during the wait ends the loop without waiting out the interval."""
    stop = asyncio.Event()

    async def step() -> None:
        asyncio.get_running_loop().call_soon(stop.set)

    await asyncio.wait_for(
        run_periodically(step, stop, 3600, log=RecordingLog(), failure_event="x"), 5
    )


async def test_a_programming_error_is_not_swallowed() -> None:
    """Anything else propagates, so the runtime's supervisor logs it and restarts the task."""

    async def step() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await run_periodically(step, asyncio.Event(), 0.001, log=RecordingLog(), failure_event="x")
