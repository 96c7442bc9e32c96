"""Folds the rollup deltas that write transactions append (``stats_hourly_pending``,
``stats_hourly_tags_pending``) into the hourly rollups.

One compactor at a time (a transaction-level advisory lock), bounded work per transaction,
and nothing the ingest path waits on: batches only append deltas; the compactor alone
updates ``stats_hourly`` and ``stats_hourly_tags``, in key order. Reads add the rollups and
the deltas, so a fold never changes what they see.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from gateway.periodic import run_periodically
from gateway.query.counters import COUNTER_COLUMNS

__all__ = ["RollupCompactor"]

log = structlog.get_logger("hookline.rollups")

_LOCK_ID = 0x486F6F72  # "Hoor": the compactor's advisory lock


def _fold_sql(pending: str, target: str, keys: tuple[str, ...]) -> str:
    """Move up to $1 delta rows into the rollup, summed per key; return how many moved."""
    key_list = ", ".join(keys)
    sums = ", ".join(f"sum({c})" for c in COUNTER_COLUMNS)
    updates = ", ".join(f"{c} = s.{c} + excluded.{c}" for c in COUNTER_COLUMNS)
    return (  # identifiers only, from constants; the value is $1
        f"WITH moved AS (DELETE FROM {pending} WHERE ctid = ANY(ARRAY("  # noqa: S608
        f"SELECT ctid FROM {pending} LIMIT $1)) RETURNING *), "
        f"folded AS (INSERT INTO {target} AS s ({key_list}, {', '.join(COUNTER_COLUMNS)}) "
        f"SELECT {key_list}, {sums} FROM moved GROUP BY {key_list} ORDER BY {key_list} "
        f"ON CONFLICT ({key_list}) DO UPDATE SET {updates} RETURNING 1) "
        "SELECT count(*) FROM moved"
    )


_FOLDS = (
    _fold_sql("stats_hourly_pending", "stats_hourly", ("hour", "provider", "source", "campaign")),
    _fold_sql(
        "stats_hourly_tags_pending",
        "stats_hourly_tags",
        ("hour", "tag", "provider", "source"),
    ),
)


class RollupCompactor:
    """``run`` is the background task; ``run_once`` folds everything appended so far."""

    def __init__(
        self, pool: asyncpg.Pool, *, interval_seconds: float = 5.0, batch_rows: int = 20_000
    ) -> None:
        self.pool = pool
        self.interval_seconds = interval_seconds
        #: delta rows per fold transaction
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
        """Fold every delta appended so far, ``batch_rows`` per transaction; return how many
        were folded. ``wait=False`` gives up (returns 0) when another compactor holds the
        lock instead of waiting for it."""
        folded = 0
        for sql in _FOLDS:
            while True:
                async with self.pool.acquire() as conn, conn.transaction():
                    if wait:
                        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
                    elif not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_ID):
                        return folded
                    moved: int = await conn.fetchval(sql, self.batch_rows)
                folded += moved
                if moved < self.batch_rows:
                    break
        return folded
