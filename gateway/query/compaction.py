"""Folds the rollup tallies that write transactions append (``stats_pending``: a row per
statement and shape, see migration 0006) into the hourly rollups, ``stats_hourly`` and, per
distinct tag, ``stats_hourly_tags``.

One compactor at a time (a transaction-level advisory lock), bounded work per transaction,
and nothing the ingest path waits on: batches only append tallies; the compactor alone
updates the rollups. Reads add the rollups and the tallies, and a fold moves rows from one
to the other in one transaction, so it never changes what they see.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from gateway.periodic import run_periodically
from gateway.query.counters import COUNTER_COLUMNS, per_tag
from gateway.settings import ReadSideSettings

__all__ = ["RollupCompactor"]

log = structlog.get_logger("hookline.rollups")

#: the defaults of the read side's tunables (gateway/settings.py holds them)
_READ_SIDE = ReadSideSettings()

_LOCK_ID = 0x486F6F72  # "Hoor": the compactor's advisory lock


def _upsert_sql(target: str, keys: tuple[str, ...], rows: str) -> str:
    """Add the counters of ``rows`` into ``target``, summed per key. Hashed, not sorted:
    the compactor is the rollups' only writer (under its lock), so no key order is needed
    to avoid deadlocks, and the sort was a fifth of the fold."""
    key_list = ", ".join(keys)
    sums = ", ".join(f"sum({c})" for c in COUNTER_COLUMNS)
    updates = ", ".join(f"{c} = s.{c} + excluded.{c}" for c in COUNTER_COLUMNS)
    return (  # identifiers only, from constants
        f"INSERT INTO {target} AS s ({key_list}, {', '.join(COUNTER_COLUMNS)}) "  # noqa: S608
        f"SELECT {key_list}, {sums} FROM {rows} AS r GROUP BY {key_list} "
        f"ON CONFLICT ({key_list}) DO UPDATE SET {updates}"
    )


_HOURLY_KEYS = ("hour", "provider", "source", "campaign")
_TAG_KEYS = ("hour", "tag", "provider", "source")

#: move up to $1 pending rows into both rollups; return how many moved
_FOLD = (  # identifiers only, from constants; the value is $1
    "WITH moved AS (DELETE FROM stats_pending WHERE ctid = ANY(ARRAY("  # noqa: S608
    "SELECT ctid FROM stats_pending LIMIT $1)) RETURNING *), "
    f"hourly AS ({_upsert_sql('stats_hourly', _HOURLY_KEYS, 'moved')} RETURNING 1), "
    f"tagged AS ({_upsert_sql('stats_hourly_tags', _TAG_KEYS, per_tag('moved'))} RETURNING 1) "
    "SELECT count(*) FROM moved"
)


class RollupCompactor:
    """``run`` is the background task; ``run_once`` folds everything appended so far."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        interval_seconds: float = _READ_SIDE.compaction_interval_seconds,
        batch_rows: int = _READ_SIDE.compaction_batch_rows,
    ) -> None:
        self.pool = pool
        self.interval_seconds = interval_seconds
        #: pending rows per fold transaction
        self.batch_rows = batch_rows

    async def run(self, stop: asyncio.Event) -> None:
        await run_periodically(
            lambda: self.run_once(wait=False),
            stop,
            self.interval_seconds,
            log=log,
            failure_event="rollups.compaction_failed",
        )

    async def run_once(self, *, wait: bool = True) -> int:
        """Fold every tally appended so far, ``batch_rows`` per transaction; return how many
        were folded. ``wait=False`` gives up (returns 0) when another compactor holds the
        lock instead of waiting for it."""
        folded = 0
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                if wait:
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
                elif not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_ID):
                    return folded
                moved: int = await conn.fetchval(_FOLD, self.batch_rows)
            folded += moved
            if moved < self.batch_rows:
                return folded
