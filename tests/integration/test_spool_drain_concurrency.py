"""Appends while the drainer drains, against real PostgreSQL: records that arrive after
the drainer has taken its segments land in a new segment, survive the drain (which
deletes only what it committed) and are stored by the next one, each exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from gateway.ingest.drainer import SpoolDrainer
from gateway.ingest.isolation import IsolatingWriter
from gateway.ingest.spool import Spool, read_segment
from gateway.resilience import AsyncCircuitBreaker
from gateway.storage.data_errors import is_data_error
from gateway.storage.pool import create_pool
from gateway.storage.quarantine import QuarantineStore
from gateway.storage.store import EventStore
from handlers.events import EmailEvent, EventType
from observability.metrics import Metrics

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(key: str) -> EmailEvent:
    return EmailEvent(
        provider="sendgrid",
        source="main",
        event_type=EventType.DELIVERED,
        occurred_at=NOW,
        received_at=NOW,
        recipient="a@example.com",
        message_id="m",
        dedup_key=f"sendgrid:{key}",
    )


@pytest.fixture
async def pool(fresh_db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(fresh_db_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def until_a_lock_wait(conn: asyncpg.Connection) -> None:
    """Until some other session waits for a lock (the drainer's INSERT on events)."""
    for _ in range(500):
        if await conn.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the drainer never reached its write")


async def test_records_appended_during_a_drain_survive_it_and_drain_next_time(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The drainer takes the spool's segments and blocks on its write (the events table
    is locked by another session); meanwhile three more records are appended. The drain
    stores and deletes only what it took; the new records are still spooled, in their own
    segment, and the next drain stores them. Every event is in PostgreSQL exactly once."""
    metrics = Metrics()
    breaker = AsyncCircuitBreaker(
        "storage", metrics, fail_max=1, reset_timeout=60, exclude=(is_data_error,)
    )
    writer = IsolatingWriter(EventStore(pool), QuarantineStore(pool), breaker, metrics)
    spool = Spool(tmp_path, metrics, max_bytes=10**6, segment_bytes=10**6)
    drainer = SpoolDrainer(spool, writer, breaker, metrics)
    for i in range(4):
        await spool.append([event(f"early{i}")])

    async with pool.acquire() as blocker:
        transaction = blocker.transaction()
        await transaction.start()
        await blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        draining = asyncio.ensure_future(drainer.drain_once())
        await until_a_lock_wait(blocker)
        for i in range(3):
            await spool.append([event(f"late{i}")])
        await transaction.rollback()
    moved = await asyncio.wait_for(draining, 30)

    assert moved == 4
    assert spool.events == 3
    (remaining,) = sorted(tmp_path.glob("seg-*.log"))
    assert [e.dedup_key for e in read_segment(remaining.read_bytes()).events] == [
        f"sendgrid:late{i}" for i in range(3)
    ]

    assert await drainer.drain_once() == 3
    assert spool.events == 0 and not list(tmp_path.glob("seg-*.log"))
    async with pool.acquire() as conn:
        stored = [r["dedup_key"] for r in await conn.fetch("SELECT dedup_key FROM events")]
    assert sorted(stored) == sorted(
        [f"sendgrid:early{i}" for i in range(4)] + [f"sendgrid:late{i}" for i in range(3)]
    )


async def test_the_drainer_loop_drains_on_every_interval_until_stopped(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """``SpoolDrainer.run`` is the background loop: it drains, then waits one interval (or
    until stopped) and drains again. A record spooled while the loop is already waiting
    is stored on a later pass, then a second one too; setting ``stop`` ends the loop
    cleanly, without an exception."""
    metrics = Metrics()
    breaker = AsyncCircuitBreaker(
        "storage", metrics, fail_max=1, reset_timeout=60, exclude=(is_data_error,)
    )
    writer = IsolatingWriter(EventStore(pool), QuarantineStore(pool), breaker, metrics)
    spool = Spool(tmp_path, metrics, max_bytes=10**6, segment_bytes=10**6)
    drainer = SpoolDrainer(spool, writer, breaker, metrics, interval=0.05)
    stop = asyncio.Event()
    loop = asyncio.ensure_future(drainer.run(stop))

    async def until_stored(key: str) -> None:
        async with pool.acquire() as conn:
            for _ in range(1000):
                if loop.done():
                    loop.result()  # the loop must not end (or fail) before it is stopped
                    raise AssertionError("the drainer loop ended before it was stopped")
                if await conn.fetchval("SELECT 1 FROM events WHERE dedup_key = $1", key):
                    return
                await asyncio.sleep(0.01)
        raise AssertionError(f"{key} was never drained")

    try:
        await asyncio.sleep(0.1)  # the first pass found nothing; the loop is waiting
        await spool.append([event("first")])
        await until_stored("sendgrid:first")
        await spool.append([event("second")])
        await until_stored("sendgrid:second")
        assert spool.events == 0
    finally:
        stop.set()
    await asyncio.wait_for(loop, 30)
    assert loop.exception() is None
