"""Migration 0012 makes the write path cheaper without changing what it records: the new
rollup trigger appends exactly the tallies, first engagements and late-day marks of 0008's,
and the partial campaign index still serves the campaign filter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from gateway.storage.migrate import apply_migrations
from tests.integration.test_migrations import empty_db, migrate_to

__all__ = ["empty_db"]  # the fixture, imported for pytest

_COLUMNS = (
    "dedup_key, provider, source, event_type, occurred_at, received_at, recipient, "
    "message_id, bounce_class, machine_open, campaign, tags"
)


def _events(now: datetime) -> list[tuple[Any, ...]]:
    """Every case the tallies distinguish: types, bounce classes, machine and human opens,
    clicks, a key opened twice in one statement (the earlier one is the first), opens with
    no message id (each a first), repeated and crossing tags, campaigns, two hours, and
    rows received yesterday (late-day marks)."""
    hour = now.replace(minute=5, second=0, microsecond=0)
    earlier = hour - timedelta(hours=3)
    yesterday = now - timedelta(days=1)
    rows: list[tuple[Any, ...]] = []

    def add(kind: str, **values: Any) -> None:
        rows.append(
            (
                f"k{len(rows)}",
                values.get("provider", "sendgrid"),
                values.get("source", "main"),
                kind,
                values.get("occurred_at", hour),
                values.get("received_at", now),
                values.get("recipient", f"r{len(rows) % 4}@example.com"),
                values.get("message_id", f"m{len(rows) % 3}"),
                values.get("bounce_class"),
                values.get("machine_open", False),
                values.get("campaign"),
                values.get("tags", []),
            )
        )

    for kind in ("queued", "sent", "delivered", "deferred", "dropped", "complained"):
        add(kind, tags=["a"])
    for kind in ("unsubscribed", "resubscribed", "auto_replied", "unknown"):
        add(kind, campaign="spring", tags=["b", "a"])
    add("bounced", bounce_class="hard", tags=["a", "a"])
    add("bounced", bounce_class="soft", occurred_at=earlier)
    add("bounced", bounce_class="block")
    add("opened", machine_open=True, message_id="m1", recipient="x@example.com")
    add("opened", message_id="m1", recipient="X@example.com", occurred_at=earlier)
    add("opened", message_id="m1", recipient="x@example.com", campaign="spring")
    add("clicked", message_id="m1", recipient="x@example.com", tags=["c"])
    add("clicked", message_id="m1", recipient="x@example.com", occurred_at=earlier)
    add("opened", message_id=None, tags=["c"])
    add("clicked", message_id=None, provider="mailgun")
    add("delivered", received_at=yesterday, recipient="late@example.com")
    add("opened", received_at=yesterday, machine_open=True, recipient="machine@example.com")
    add("clicked", received_at=yesterday - timedelta(days=1), recipient="late@example.com")
    return rows


async def _record(conn: asyncpg.Connection, now: datetime) -> dict[str, list[tuple[Any, ...]]]:
    """Store the events in two statements (the second repeats engagement keys) and return
    what the trigger wrote, then empty those tables again."""
    rows = _events(now)
    days = {r[5].date() for r in rows}
    for day in days:
        await conn.execute("SELECT hookline_ensure_event_partition($1)", day)
    half = len(rows) // 2
    for part in (rows[:half], rows[half:], [(f"again-{r[0]}", *r[1:]) for r in rows]):
        await _insert(conn, part)
    written = {
        "stats_pending": sorted(
            (tuple(r) for r in await conn.fetch("SELECT * FROM stats_pending")), key=repr
        ),
        "first_engagements": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT key, kinds, added FROM first_engagements ORDER BY key"
            )
        ],
        "recipient_activity_late": [
            tuple(r)
            for r in await conn.fetch(
                "SELECT day, count(*) FROM recipient_activity_late GROUP BY day ORDER BY day"
            )
        ],
    }
    await conn.execute("TRUNCATE events, stats_pending, first_engagements, recipient_activity_late")
    return written


async def _insert(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    """One INSERT statement for ``rows`` (the trigger runs once per statement)."""
    await conn.execute(
        f"INSERT INTO events ({_COLUMNS}) SELECT d, p, s, t, o, r, rc, m, b, mo, c, "
        "coalesce((SELECT array_agg(x) FROM jsonb_array_elements_text(tg) AS x), '{}') "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], "
        "$6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::bool[], $11::text[], "
        "$12::jsonb[]) AS u(d, p, s, t, o, r, rc, m, b, mo, c, tg)",
        *[list(column) for column in zip(*rows, strict=True)][:11],
        [_json_list(r[11]) for r in rows],
    )


def _json_list(tags: list[str]) -> str:
    return "[" + ", ".join(f'"{t}"' for t in tags) + "]"


async def test_the_new_trigger_records_exactly_what_the_old_one_did(
    empty_db: asyncpg.Connection,
) -> None:
    """The same statements under 0008's trigger and under 0012's write identical tallies
    (per shape, every counter), first-engagement bits and late-day marks."""
    now = datetime.now(UTC)
    await migrate_to(empty_db, 11)
    before = await _record(empty_db, now)
    assert [m.version for m in await apply_migrations(empty_db)] == [12]
    after = await _record(empty_db, now)

    assert before["stats_pending"], "the fixture wrote no tallies"
    assert any(row[-4:] != (0, 0, 0) for row in before["stats_pending"])  # uniques counted
    assert before["recipient_activity_late"], "the fixture marked no late day"
    assert after == before


async def test_the_partial_campaign_index_serves_the_campaign_filter(
    empty_db: asyncpg.Connection,
) -> None:
    """After 0012 the campaign index skips rows without a campaign, and a campaign filter
    (gateway/query/sql.py's ``campaign = $n``) is still answered from it."""
    await migrate_to(empty_db, 11)
    await apply_migrations(empty_db)
    predicate = await empty_db.fetchval(
        "SELECT pg_get_expr(indpred, indrelid) FROM pg_index "
        "WHERE indexrelid = 'events_campaign'::regclass"
    )
    assert predicate == "(campaign IS NOT NULL)"
    await empty_db.execute("SET enable_seqscan = off")
    await empty_db.execute("SET plan_cache_mode = force_generic_plan")
    await empty_db.execute(
        "PREPARE by_campaign(text) AS SELECT id FROM events WHERE campaign = $1 "
        "ORDER BY occurred_at DESC, id DESC LIMIT 10"
    )
    plan = "\n".join(r[0] for r in await empty_db.fetch("EXPLAIN EXECUTE by_campaign('spring')"))
    # the partition's copy of events_campaign searched by campaign, not another index
    # scanned and filtered
    assert "Index Cond: (campaign = $1)" in plan, plan
