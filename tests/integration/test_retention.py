"""Retention: whole daily partitions older than retention_days are dropped (exactly those),
dedup keys and first engagements of that age are pruned in batches, rollups and recipient
activity are kept, a busy lock defers the drop instead of blocking ingest, and the worker is
wired only where background workers run."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from gateway.query.activity import ActivityFolder
from gateway.query.compaction import RollupCompactor
from gateway.query.retention import Retention, partition_day
from gateway.storage.store import EventStore
from handlers.events import EmailEvent, EventType

NOW = datetime(2024, 6, 1, 10, 0, tzinfo=UTC)  # 90 days back: 2024-03-03T10:00Z


def ev(key: str, received_at: datetime, event_type: str = "delivered") -> EmailEvent:
    return EmailEvent(
        provider="sendgrid",
        source="main",
        event_type=EventType(event_type),
        occurred_at=received_at - timedelta(minutes=1),
        received_at=received_at,
        recipient=f"{key}@example.com",
        message_id=f"m-{key}",
        dedup_key=key,
    )


async def partitions(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass ORDER BY 1"
    )
    return [row["relname"] for row in rows]


def at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


async def test_drops_exactly_the_partitions_past_retention(store: EventStore) -> None:
    """With 90 days at 2024-06-01T10:00Z the cutoff is 2024-03-03T10:00Z: partitions
    ending at or before it (up to events_20240302) go; events_20240303, which still holds
    younger rows, stays. Keys and first engagements older than the cutoff are pruned in
    batches, old rows of the default partition deleted; rollups and activity stay."""
    days = ["2024-02-20", "2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04", "2024-05-31"]
    events = [ev(f"k{d}-{h}", at(d, h)) for d in days for h in (1, 9, 11, 23)]
    events += [ev(f"o{d}", at(d, 5), "opened") for d in days]
    await store.write_events(events)
    await RollupCompactor(store.pool).run_once()
    assert await ActivityFolder(store.pool).run_once() == [date.fromisoformat(d) for d in days]
    async with store.pool.acquire() as conn:
        # first engagements recorded long ago, and two recent ones
        await conn.execute("UPDATE first_engagements SET received_at = '2024-03-01T00:00Z'")
        await conn.execute(
            "INSERT INTO first_engagements (key, kinds, added, received_at) VALUES "
            "('\\x01', 1, 1, '2024-05-31T00:00Z'), ('\\x02', 4, 4, '2024-03-03T11:00Z')"
        )
        # rows that land in the default partition (no daily partition for their day)
        await conn.execute(
            "INSERT INTO events (dedup_key, provider, source, event_type, occurred_at, "
            "received_at) VALUES ('old-default', 'sendgrid', 'main', 'sent', "
            "'2024-01-01T00:00Z', '2024-01-01T00:00Z'), ('new-default', 'sendgrid', 'main', "
            "'sent', '2024-05-10T00:00Z', '2024-05-10T00:00Z')"
        )
        rollups_before = await conn.fetchval("SELECT sum(delivered) FROM stats_hourly")
        activity_before = await conn.fetchval("SELECT count(*) FROM recipient_activity")
        assert rollups_before == 4 * len(days) and activity_before == 5 * len(days)
        before = await partitions(conn)
    # every daily partition up to 2024-03-02 (the store also made each day's eve)
    expected = [name for name in before if (partition_day(name) or date.max) <= date(2024, 3, 2)]
    assert {"events_20240220", "events_20240301", "events_20240302"} <= set(expected)

    report = await Retention(store, retention_days=90, batch_size=3).run_once(now=NOW)

    assert report.cutoff == datetime(2024, 3, 3, 10, tzinfo=UTC)
    assert report.dropped == expected
    assert report.deferred == []
    async with store.pool.acquire() as conn:
        remaining = await partitions(conn)
        assert set(expected).isdisjoint(remaining)
        for name in ("events_20240303", "events_20240304", "events_20240531", "events_default"):
            assert name in remaining
        for day in ("20240531", "20240601", "20240602", "20240603", "20240604"):
            assert f"events_{day}" in remaining, "upcoming partitions are created"
        dropped_left = await conn.fetchval(
            "SELECT count(*) FROM pg_class WHERE relname = ANY($1::text[])", report.dropped
        )
        assert dropped_left == 0, "detached partitions are dropped, not left behind"
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM events WHERE received_at < '2024-03-03T00:00Z'"
            )
            == 0
        )
        kept = await conn.fetchval("SELECT count(*) FROM events")
        assert kept == 3 * 5 + 1, "03-03, 03-04 and 05-31 rows plus the newer default row"
        key_days = await conn.fetch("SELECT dedup_key FROM event_keys ORDER BY 1")
        assert {r["dedup_key"] for r in key_days} == {
            e.dedup_key for e in events if e.received_at >= report.cutoff
        }
        assert report.event_keys_pruned == len(events) - len(key_days)
        assert report.event_keys_pruned > 3, "pruned over several batches"
        remaining_firsts = await conn.fetch("SELECT key FROM first_engagements ORDER BY key")
        assert [r["key"] for r in remaining_firsts] == [b"\x01", b"\x02"]
        assert report.first_engagements_pruned == len(days), "a row per message and recipient"
        assert report.default_rows_pruned == 1
        assert await conn.fetchval("SELECT sum(delivered) FROM stats_hourly") == rollups_before
        assert await conn.fetchval("SELECT count(*) FROM recipient_activity") == activity_before

    again = await Retention(store, retention_days=90).run_once(now=NOW)
    assert again.dropped == [] and again.event_keys_pruned == 0


async def test_a_detached_leftover_is_dropped_on_the_next_pass(store: EventStore) -> None:
    """A partition detached by a pass that crashed before its DROP is found and dropped."""
    async with store.pool.acquire() as conn:
        await conn.execute("SELECT hookline_ensure_event_partition('2024-02-15')")
        await conn.execute("ALTER TABLE events DETACH PARTITION events_20240215")
    report = await Retention(store, retention_days=90).run_once(now=NOW)
    assert report.dropped == ["events_20240215"]
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT to_regclass('events_20240215')") is None


async def test_a_busy_lock_defers_the_drop_and_never_blocks_ingest(
    store: EventStore, fresh_db_url: str
) -> None:
    """While a long read holds ``events``, the drop gives up after its lock timeout (it is
    reported as deferred) and ingest keeps going; the next pass drops it."""
    await store.ensure_partitions()  # today's partitions exist ahead of time, as in service
    await store.write_events([ev("old", at("2024-02-01"))])
    reader = await asyncpg.connect(fresh_db_url)
    try:
        transaction = reader.transaction()
        await transaction.start()
        await reader.fetchval("SELECT count(*) FROM events")  # holds ACCESS SHARE on events
        retention = Retention(
            store, retention_days=90, lock_timeout_ms=100, lock_attempts=2, pause_seconds=0.01
        )
        drop = asyncio.create_task(retention.run_once(now=NOW))
        for i in range(20):
            await asyncio.wait_for(store.write_events([ev(f"live{i}", datetime.now(UTC))]), 10)
            await asyncio.sleep(0.01)
        report = await asyncio.wait_for(drop, 30)
        old_partitions = ["events_20240131", "events_20240201"]  # the day and its eve
        assert report.deferred == old_partitions and report.dropped == []
        await transaction.rollback()
    finally:
        await reader.close()
    report = await retention.run_once(now=NOW)
    assert report.dropped == old_partitions
    async with store.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE dedup_key LIKE 'live%'") == 20


async def test_zero_retention_keeps_everything(store: EventStore) -> None:
    """retention_days = 0 drops and prunes nothing (but still creates partitions)."""
    await store.write_events([ev("ancient", at("2020-01-01"))])
    report = await Retention(store, retention_days=0).run_once(now=NOW)
    assert report.cutoff is None and report.dropped == []
    async with store.pool.acquire() as conn:
        assert "events_20200101" in await partitions(conn)
        assert "events_20240604" in await partitions(conn)


async def test_worker_wiring(gateway_factory: Any) -> None:
    """The retention task and the rollup compactor run only where the background workers
    run; the rollups trigger is on ``events`` whatever the role."""
    async with gateway_factory() as gw:
        assert {"retention", "rollup_compactor"} <= {name for name, _ in gw.runtime.background}
        async with gw.runtime.database.pool.acquire() as conn:
            enabled = await conn.fetchval(
                "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'hookline_rollups'"
            )
        assert enabled == "O"
    async with gateway_factory(server={"workers": False}) as gw:
        names = {name for name, _ in gw.runtime.background}
        assert not {"retention", "rollup_compactor"} & names
