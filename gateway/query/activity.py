"""Recipient activity, folded off the write path: the worker folds each UTC day of
received events into ``recipient_activity`` once the day has ended, instead of every write
transaction upserting its recipients (that upsert was about a quarter of the rollups
trigger's time per event at 10M events; see docs/benchmarks.md).

* ``recipient_activity_fold.open_from``: every day before it is folded; events received on
  it or later are "open" and reads take them from ``events`` directly.
* ``recipient_activity_late``: days that received rows after they ended (a spool drained
  after midnight, a batch that straddled it). The write trigger appends them, the folder
  folds those days again.

A fold merges with LEAST / GREATEST, so folding a day twice changes nothing: the folder can
always fold again rather than reason about what it has seen. A day is folded only once it
has ended, ``grace`` has passed, and no transaction that began before its end is still open:
such a transaction may have stamped rows with the day before midnight and not yet committed
(rows written after midnight with an earlier day are marked late by the trigger).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import structlog

from gateway.periodic import run_periodically
from gateway.settings import ReadSideSettings

__all__ = [
    "OPEN_START_SQL",
    "RECIPIENT_ACTIVITY_SQL",
    "ActivityFolder",
    "fold_day",
    "inactive_sql",
]

log = structlog.get_logger("hookline.activity")

#: the defaults of the read side's tunables (gateway/settings.py holds them)
_READ_SIDE = ReadSideSettings()

_LOCK_ID = 0x486F6F61  # "Hooa": the folder's advisory lock


def _activity_events(where: str) -> str:
    """The events that count for activity (deliveries, clicks, human opens) among those
    matching ``where`` (constant SQL), with ``day``, the UTC day of occurred_at."""
    return (
        "SELECT recipient, event_type, (occurred_at AT TIME ZONE 'UTC')::date AS day "  # noqa: S608
        f"FROM events WHERE {where} AND recipient IS NOT NULL "
        "AND (event_type IN ('delivered', 'clicked') "
        "OR (event_type = 'opened' AND NOT machine_open))"
    )


#: the first received_at not folded yet: the watermark, or an earlier day marked late
OPEN_START_SQL = (
    "SELECT least(f.open_from, (SELECT min(day) FROM recipient_activity_late))"
    "::timestamp AT TIME ZONE 'UTC' FROM recipient_activity_fold f"
)

#: the activity days of a set of events (``day``: the UTC day of occurred_at)
_DAYS = """min(day) FILTER (WHERE event_type = 'delivered') AS first_delivered_on,
       max(day) FILTER (WHERE event_type = 'delivered') AS last_delivered_on,
       max(day) FILTER (WHERE event_type <> 'delivered') AS last_engaged_on"""


_FOLD_DAY = f"""
INSERT INTO recipient_activity AS a
    (address, first_delivered_on, last_delivered_on, last_engaged_on)
SELECT lower(recipient), {_DAYS}
FROM ({_activity_events("received_at >= $1 AND received_at < $2")}) AS e
GROUP BY 1 ORDER BY 1
ON CONFLICT (address) DO UPDATE SET
    first_delivered_on = LEAST(a.first_delivered_on, excluded.first_delivered_on),
    last_delivered_on = GREATEST(a.last_delivered_on, excluded.last_delivered_on),
    last_engaged_on = GREATEST(a.last_engaged_on, excluded.last_engaged_on)
WHERE LEAST(a.first_delivered_on, excluded.first_delivered_on)
          IS DISTINCT FROM a.first_delivered_on
   OR GREATEST(a.last_delivered_on, excluded.last_delivered_on)
          IS DISTINCT FROM a.last_delivered_on
   OR GREATEST(a.last_engaged_on, excluded.last_engaged_on)
          IS DISTINCT FROM a.last_engaged_on
"""  # noqa: S608 (constants only; the values are $1, $2)

#: One address's activity ($1, any case): the folded row merged with all its stored events
#: (merging what is folded already changes nothing). One row, all NULL when the address has
#: no delivery, click or human open.
RECIPIENT_ACTIVITY_SQL = f"""
SELECT least(a.first_delivered_on, e.first_delivered_on) AS first_delivered_on,
       greatest(a.last_delivered_on, e.last_delivered_on) AS last_delivered_on,
       greatest(a.last_engaged_on, e.last_engaged_on) AS last_engaged_on
FROM (SELECT {_DAYS}
      FROM ({_activity_events("lower(recipient) = lower($1)")}) AS x) AS e
LEFT JOIN recipient_activity a ON a.address = lower($1)
"""  # noqa: S608 (constants only)


#: a candidate's unfolded activity: its events received since $3, read by address
_OPEN_DAYS = f"""CROSS JOIN LATERAL (
    SELECT {_DAYS}
    FROM ({_activity_events("lower(recipient) = c.address AND received_at >= $3")}) AS x
) o"""  # noqa: S608 (constants only)

_MERGED = """c.address,
       least(c.first_delivered_on, o.first_delivered_on) AS first_delivered_on,
       greatest(c.last_delivered_on, o.last_delivered_on) AS last_delivered_on,
       greatest(c.last_engaged_on, o.last_engaged_on) AS last_engaged_on"""

_QUIET = "(o.last_engaged_on IS NULL OR o.last_engaged_on < $1)"


def inactive_sql(*, after: bool) -> str:
    """Recipients first delivered to on or before $1 (a date) with no click or human open
    on or after it, in address order, at most $2, after address $4 when ``after``: the
    folded rows merged with the events received since $3 (``OPEN_START_SQL``, read first:
    as a value it prunes the partitions at planning). Two parts, each planned on its own
    with its limit (so the first reads the primary key in order and stops early), merged
    in the server's collation:

    * the folded rows that qualify, read in order from the primary key, each checked
      against its unfolded events (an index probe into the open partitions);
    * the addresses not among those whose unfolded events hold a delivery on or before $1
      (few: late events, or days the worker has not folded yet).
    """
    folded_after = " AND c.address > $4" if after else ""
    open_after = " AND lower(e.recipient) > $4" if after else ""
    return f"""
(SELECT {_MERGED}
FROM recipient_activity c
{_OPEN_DAYS}
WHERE c.first_delivered_on <= $1
  AND (c.last_engaged_on IS NULL OR c.last_engaged_on < $1){folded_after} AND {_QUIET}
ORDER BY c.address LIMIT $2)
UNION ALL
(SELECT {_MERGED}
FROM (SELECT n.address, a.first_delivered_on, a.last_delivered_on, a.last_engaged_on
      FROM (SELECT DISTINCT lower(e.recipient) AS address FROM events e
            WHERE e.received_at >= $3 AND e.event_type = 'delivered'
              AND e.recipient IS NOT NULL
              AND e.occurred_at < ($1::date + 1)::timestamp AT TIME ZONE 'UTC'{open_after}
           ) AS n
      LEFT JOIN recipient_activity a USING (address)
      WHERE (a.first_delivered_on <= $1 OR a.last_engaged_on >= $1) IS NOT TRUE) AS c
{_OPEN_DAYS}
WHERE {_QUIET}
ORDER BY c.address LIMIT $2)
ORDER BY address LIMIT $2
"""  # noqa: S608 (constants only; the values are $1..$4)


_STRAGGLERS = """
SELECT count(*) FROM pg_stat_activity
WHERE xact_start < $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND datname = current_database()
"""


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def fold_day(conn: asyncpg.Connection, day: date) -> int:
    """Merge the events received on ``day`` (UTC) into ``recipient_activity``; return the
    number of rows inserted or changed."""
    status = await conn.execute(_FOLD_DAY, _midnight(day), _midnight(day + timedelta(days=1)))
    return int(status.rsplit(" ", 1)[-1])


class ActivityFolder:
    """``run`` is the background task; ``run_once`` one pass (refold late days, then fold
    every day that has closed)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        interval_seconds: float = _READ_SIDE.activity_fold_interval_seconds,
        grace: timedelta = timedelta(seconds=_READ_SIDE.activity_fold_grace_seconds),
    ) -> None:
        self.pool = pool
        self.interval_seconds = interval_seconds
        #: how long after midnight a day is left open for the batches still in flight
        self.grace = grace

    async def run(self, stop: asyncio.Event) -> None:
        await run_periodically(
            self.run_once,
            stop,
            self.interval_seconds,
            log=log,
            failure_event="activity.fold_failed",
        )

    async def run_once(self, now: datetime | None = None) -> list[date]:
        """Fold what can be folded now (the server's clock, or ``now`` in tests); return the
        days folded (none when another folder holds the lock)."""
        folded: list[date] = []
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_ID):
                    return folded
                open_from: date = await conn.fetchval(
                    "SELECT open_from FROM recipient_activity_fold"
                )
                late = await conn.fetch("DELETE FROM recipient_activity_late RETURNING day")
                # a late day at or after the watermark is folded when the watermark passes it
                for day in sorted({row["day"] for row in late if row["day"] < open_from}):
                    await fold_day(conn, day)
                    folded.append(day)
            while True:
                async with conn.transaction():
                    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_ID):
                        break
                    open_from, clock = await conn.fetchrow(
                        "SELECT open_from, clock_timestamp() FROM recipient_activity_fold"
                    )
                    day_end = _midnight(open_from + timedelta(days=1))
                    if (now or clock) < day_end + self.grace:
                        break
                    if await conn.fetchval(_STRAGGLERS, day_end):
                        log.info("activity.fold_waits", day=open_from.isoformat())
                        break
                    changed = await fold_day(conn, open_from)
                    await conn.execute(
                        "UPDATE recipient_activity_fold SET open_from = $1",
                        open_from + timedelta(days=1),
                    )
                log.info("activity.day_folded", day=open_from.isoformat(), changed=changed)
                folded.append(open_from)
        return folded
