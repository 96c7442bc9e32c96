"""The read side's backlog gauges, read from real PostgreSQL: the pending rollup tallies rise
with writes and fall to 0 when the compactor folds them; the unfolded time runs from the
oldest day still to fold to the last UTC midnight, and is 0 once the folder has caught up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.query.activity import ActivityFolder
from gateway.query.compaction import RollupCompactor
from gateway.query.gauges import ReadSideGauges
from gateway.storage.store import EventStore
from handlers.events import EmailEvent, EventType
from observability.metrics import Metrics

DAY = 86_400.0


def pending(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("hookline_rollup_pending_rows")


def unfolded(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("hookline_activity_unfolded_seconds")


def delivered(key: str, campaign: str) -> EmailEvent:
    now = datetime.now(UTC)
    return EmailEvent(
        provider="sendgrid",
        source="main",
        event_type=EventType.DELIVERED,
        occurred_at=now,
        received_at=now,
        recipient=f"{key}@example.com",
        message_id=f"m-{key}",
        dedup_key=key,
        campaign=campaign,
    )


async def test_pending_tallies_rise_with_writes_and_fall_when_folded(store: EventStore) -> None:
    """Three campaigns in one batch append three pending shapes; the gauge reports them
    until the compactor folds them, then 0."""
    metrics = Metrics()
    gauges = ReadSideGauges(store.pool, metrics)
    await gauges.refresh()
    assert pending(metrics) == 0

    await store.write_events([delivered(f"k{i}", f"c{i % 3}") for i in range(9)])
    await gauges.refresh()
    assert pending(metrics) == 3

    assert await RollupCompactor(store.pool).run_once() == 3
    await gauges.refresh()
    assert pending(metrics) == 0


async def test_unfolded_time_runs_from_the_oldest_day_still_to_fold(store: EventStore) -> None:
    """The fold watermark two days back is two days unfolded; a day marked late five days
    back makes it five; once the folder has run (past its grace), 0."""
    metrics = Metrics()
    gauges = ReadSideGauges(store.pool, metrics)
    today = datetime.now(UTC).date()
    async with store.pool.acquire() as conn:
        await conn.execute("UPDATE recipient_activity_fold SET open_from = $1", today)
        await gauges.refresh()
        assert unfolded(metrics) == 0

        await conn.execute(
            "UPDATE recipient_activity_fold SET open_from = $1", today - timedelta(days=2)
        )
        await gauges.refresh()
        assert unfolded(metrics) == 2 * DAY

        await conn.execute(
            "INSERT INTO recipient_activity_late (day) VALUES ($1)", today - timedelta(days=5)
        )
        await gauges.refresh()
        assert unfolded(metrics) == 5 * DAY

    await ActivityFolder(store.pool, grace=timedelta(0)).run_once()
    await gauges.refresh()
    assert unfolded(metrics) == 0
