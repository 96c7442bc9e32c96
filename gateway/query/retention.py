"""Retention: drop whole daily ``events`` partitions older than ``[storage] retention_days``,
prune the dedup keys and first engagements of the same age in small batches, and create the
upcoming daily partitions. Rollups, recipient activity and suppressions are kept: a pass
first folds the recipient activity of the days that have ended (``ActivityFolder``), and a
partition whose day is not folded yet is deferred, not dropped.

Why not ``DETACH PARTITION ... CONCURRENTLY``: it cannot run inside a transaction and
PostgreSQL refuses it while the table has a default partition (``events_default`` exists
to absorb clock skew). Both plain ``DETACH`` and ``DROP TABLE`` of a partition need an
ACCESS EXCLUSIVE lock on ``events`` itself, and the danger is not the (catalog-only,
milliseconds) work but the lock *queue*: a waiting ACCESS EXCLUSIVE request blocks every
later ingest COPY until it is granted. So each step:

* runs with ``SET LOCAL lock_timeout`` (default 200 ms): if a long read holds ``events``,
  the request gives up instead of queueing ingest behind it, and is retried a few times
  with a pause, then on the next pass. The worst stall ingest can see is one lock timeout;
* detaches the partition in one short transaction (catalog only), then drops the detached
  table in a second one, which no longer locks ``events`` (the file unlinks happen outside
  the parent lock);
* holds a transaction-level advisory lock, so replicas never race each other, and
  detached-but-not-dropped leftovers of a crash are found and dropped on the next pass.

Creating the upcoming daily partitions (``CREATE TABLE ... PARTITION OF``) takes the same
strong lock, so it goes through the same lock-timeout path first; only once every upcoming
partition exists is ``EventStore.ensure_partitions`` called (then it runs no DDL and just
refreshes the store's cache).

A partition is dropped only when its whole range ends at or before ``now - retention_days``
(partition ``events_YYYYMMDD`` holds received_at in [day, day + 1)). ``retention_days <= 0``
keeps everything.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import structlog

from gateway.periodic import run_periodically
from gateway.query.activity import OPEN_START_SQL, ActivityFolder
from gateway.settings import StorageSettings
from gateway.storage.store import PARTITION_LOCK_ID, EventStore

__all__ = ["Retention", "RetentionReport", "partition_day"]

log = structlog.get_logger("hookline.retention")

_PARTITION = re.compile(r"^events_(\d{8})$")
_LOCK_ID = PARTITION_LOCK_ID  # the one lock for partition DDL, shared with EventStore
#: daily partitions are kept ready this many days ahead (as ``EventStore`` does at start-up)
#: the defaults of the storage tunables (gateway/settings.py holds them)
_STORAGE = StorageSettings()
_LIST_PARTITIONS = """
SELECT c.relname, c.relispartition
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname ~ '^events_[0-9]{8}$'
  AND (i.inhparent IS NULL OR i.inhparent = 'events'::regclass)
"""


def partition_day(name: str) -> date | None:
    """The day an ``events_YYYYMMDD`` partition holds (None for any other name)."""
    match = _PARTITION.match(name)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None


@dataclass
class RetentionReport:
    cutoff: datetime | None
    dropped: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    event_keys_pruned: int = 0
    first_engagements_pruned: int = 0
    default_rows_pruned: int = 0


class Retention:
    """The retention worker. ``run`` is the background task; ``run_once`` one pass."""

    def __init__(
        self,
        store: EventStore,
        retention_days: int,
        *,
        interval_seconds: float = _STORAGE.retention_interval_seconds,
        batch_size: int = _STORAGE.retention_batch_rows,
        partitions_ahead_days: int = _STORAGE.partitions_ahead_days,
        lock_timeout_ms: int = 200,
        lock_attempts: int = 5,
        pause_seconds: float = 0.05,
        activity: ActivityFolder | None = None,
    ) -> None:
        self.store = store
        #: folds recipient activity before a partition goes (an unfolded day is kept)
        self.activity = activity or ActivityFolder(store.pool)
        self.pool = store.pool
        self.retention_days = retention_days
        self.interval_seconds = interval_seconds
        self.batch_size = batch_size
        self.partitions_ahead_days = partitions_ahead_days
        self.lock_timeout_ms = lock_timeout_ms
        self.lock_attempts = lock_attempts
        self.pause_seconds = pause_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Every ``interval_seconds`` until ``stop``; a failed pass is logged and retried."""
        await run_periodically(
            lambda: self.run_once(stop=stop),
            stop,
            self.interval_seconds,
            log=log,
            failure_event="retention.pass_failed",
        )

    async def run_once(
        self, now: datetime | None = None, stop: asyncio.Event | None = None
    ) -> RetentionReport:
        now = now or datetime.now(UTC)
        today = now.astimezone(UTC).date()
        if await self._create_upcoming(today):
            await self.store.ensure_partitions(
                today, self.partitions_ahead_days
            )  # all exist: no DDL
        if self.retention_days <= 0:
            return RetentionReport(cutoff=None)
        cutoff = now - timedelta(days=self.retention_days)
        report = RetentionReport(cutoff=cutoff)
        await self._drop_partitions(cutoff, report)
        report.event_keys_pruned = await self._prune(
            "DELETE FROM event_keys WHERE dedup_key = ANY(ARRAY("
            "SELECT dedup_key FROM event_keys WHERE received_at < $1 "
            "LIMIT $2 FOR UPDATE SKIP LOCKED))",
            cutoff,
            stop,
        )
        report.first_engagements_pruned = await self._prune(
            "DELETE FROM first_engagements WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM first_engagements WHERE received_at < $1 "
            "LIMIT $2 FOR UPDATE SKIP LOCKED))",
            cutoff,
            stop,
        )
        report.default_rows_pruned = await self._prune(
            "DELETE FROM events_default WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM events_default WHERE received_at < $1 "
            "LIMIT $2 FOR UPDATE SKIP LOCKED))",
            cutoff,
            stop,
        )
        if report.dropped or report.deferred or report.event_keys_pruned:
            log.info(
                "retention.pass",
                dropped=report.dropped,
                deferred=report.deferred,
                event_keys_pruned=report.event_keys_pruned,
                first_engagements_pruned=report.first_engagements_pruned,
                default_rows_pruned=report.default_rows_pruned,
            )
        return report

    async def _create_upcoming(self, today: date) -> bool:
        """Create the daily partitions from yesterday to ``partitions_ahead_days`` ahead, each
        under the lock timeout (``CREATE TABLE ... PARTITION OF`` locks ``events`` as
        strongly as a drop). False when one was deferred; there are days of slack."""
        for offset in range(-1, self.partitions_ahead_days + 1):
            day = today + timedelta(days=offset)
            if not await self._locked_step("SELECT hookline_ensure_event_partition($1)", day):
                log.info("retention.partition_create_deferred", day=day.isoformat())
                return False
        return True

    async def _drop_partitions(self, cutoff: datetime, report: RetentionReport) -> None:
        await self.activity.run_once()
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_LIST_PARTITIONS)
            unfolded_from: datetime = await conn.fetchval(OPEN_START_SQL)
        expired = []
        for row in rows:
            day = partition_day(row["relname"])
            if day is None:
                continue
            upper = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
            if upper <= cutoff:
                expired.append((upper, row["relname"], row["relispartition"]))
        for upper, name, attached in sorted(expired):
            if upper > unfolded_from:  # some of its rows are not folded into recipient activity
                log.warning("retention.partition_not_folded", partition=name)
                report.deferred.append(name)
            elif await self._drop_one(name, attached):
                report.dropped.append(name)
            else:
                report.deferred.append(name)

    async def _drop_one(self, name: str, attached: bool) -> bool:
        """Detach (if attached) then drop one partition; False when the lock was busy."""
        quoted = '"' + name + '"'  # name matched ^events_[0-9]{8}$
        steps = ([f"ALTER TABLE events DETACH PARTITION {quoted}"] if attached else []) + [
            f"DROP TABLE IF EXISTS {quoted}"
        ]
        for statement in steps:
            if not await self._locked_step(statement):
                return False
        return True

    async def _locked_step(self, statement: str, *args: object) -> bool:
        for attempt in range(self.lock_attempts):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await conn.execute(f"SET LOCAL lock_timeout = {int(self.lock_timeout_ms)}")
                    if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_ID):
                        return False  # another replica is doing it
                    await conn.execute(statement, *args)
                return True
            except asyncpg.LockNotAvailableError:
                log.info("retention.lock_busy", attempt=attempt + 1)
                await asyncio.sleep(self.pause_seconds * (1 + random.random()) * (attempt + 1))
            except asyncpg.UndefinedTableError:
                return True  # already gone (another replica)
            except asyncpg.PostgresError as exc:
                if "is not a partition" in str(exc):
                    return True  # detached already: the DROP step follows
                raise
        return False

    async def _prune(self, sql: str, cutoff: datetime, stop: asyncio.Event | None) -> int:
        """Run a batched DELETE until it deletes less than a batch (or ``stop`` is set)."""
        total = 0
        while stop is None or not stop.is_set():
            async with self.pool.acquire() as conn:
                status = await conn.execute(sql, cutoff, self.batch_size)
            deleted = int(status.rsplit(" ", 1)[-1])
            total += deleted
            if deleted < self.batch_size:
                break
            await asyncio.sleep(self.pause_seconds)
        return total
