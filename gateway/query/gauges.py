"""Keeps the read side's backlog gauges current, from the database (so every replica that
runs the workers reports the same values):

* ``hookline_rollup_pending_rows``: tallies the compactor has not folded yet. It folds every
  few seconds, so this stays near what a few seconds of ingest append; growth means the
  compactor is not running (no worker) or cannot keep up, and the stats reads, which add
  the pending rows, slow down. Counted up to ``_COUNT_CAP`` rows, so a stalled compactor
  does not make the count itself expensive.
* ``hookline_activity_unfolded_seconds``: how much of the time up to the last UTC midnight
  is not folded into recipient activity yet. 0 once the folder has caught up; minutes just
  after midnight (the grace period, transactions begun before midnight); growth means the
  folder is held back (an old open transaction) or not running.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from gateway.periodic import run_periodically
from gateway.query.activity import OPEN_START_SQL
from gateway.settings import ReadSideSettings
from observability.metrics import Metrics

__all__ = ["ReadSideGauges"]

log = structlog.get_logger("hookline.read_side")

#: the defaults of the read side's tunables (gateway/settings.py holds them)
_READ_SIDE = ReadSideSettings()

_COUNT_CAP = 10_000_000

_BACKLOG = (  # constants only
    f"SELECT (SELECT count(*) FROM (SELECT FROM stats_pending LIMIT {_COUNT_CAP}) AS p) "  # noqa: S608
    "AS pending, extract(epoch FROM greatest(interval '0', "
    f"date_trunc('day', now(), 'UTC') - ({OPEN_START_SQL})))::float8 AS unfolded"
)


class ReadSideGauges:
    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: Metrics,
        *,
        interval_seconds: float = _READ_SIDE.gauges_interval_seconds,
    ) -> None:
        self.pool = pool
        self.metrics = metrics
        self.interval_seconds = interval_seconds

    async def refresh(self) -> None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(_BACKLOG)
        self.metrics.rollup_pending_rows.set(row["pending"])
        self.metrics.activity_unfolded_seconds.set(row["unfolded"])

    async def run(self, stop: asyncio.Event) -> None:
        await run_periodically(
            self.refresh,
            stop,
            self.interval_seconds,
            log=log,
            failure_event="read_side.gauges_failed",
        )
