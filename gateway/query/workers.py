"""The read side's background work: the gauges of its backlogs in every process, and where
the background workers run, the rollup compactor, the recipient activity folder and the
retention worker. (The rollups themselves are kept by the ``hookline_rollups`` trigger of
migrations 0003, 0005 and 0006, in the events' own transaction, so every writer — the
ingest batcher, the spool drainer — feeds them without any hook.) ``gateway/app.py`` runs
these tasks."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from gateway.periodic import BackgroundTask
from gateway.query.activity import ActivityFolder
from gateway.query.compaction import RollupCompactor
from gateway.query.gauges import ReadSideGauges
from gateway.query.retention import Retention
from gateway.settings import Settings
from gateway.storage.store import EventStore
from observability.metrics import Metrics

__all__ = ["read_side_tasks"]


def read_side_tasks(
    pool: asyncpg.Pool,
    store: EventStore,
    metrics: Metrics,
    settings: Settings,
    *,
    runs_workers: bool,
) -> list[tuple[str, BackgroundTask]]:
    """The named background tasks of the read side for one process."""
    read_side, storage = settings.read_side, settings.storage
    # every process reports the backlogs, so they show (and alert) when no worker runs
    gauges = ReadSideGauges(pool, metrics, interval_seconds=read_side.gauges_interval_seconds)
    tasks: list[tuple[str, BackgroundTask]] = [("read_side_gauges", gauges.run)]
    if runs_workers:
        activity = ActivityFolder(
            pool,
            interval_seconds=read_side.activity_fold_interval_seconds,
            grace=timedelta(seconds=read_side.activity_fold_grace_seconds),
        )
        retention = Retention(
            store,
            retention_days=storage.retention_days,
            interval_seconds=storage.retention_interval_seconds,
            batch_size=storage.retention_batch_rows,
            partitions_ahead_days=storage.partitions_ahead_days,
            activity=activity,
        )
        compactor = RollupCompactor(
            pool,
            interval_seconds=read_side.compaction_interval_seconds,
            batch_rows=read_side.compaction_batch_rows,
        )
        tasks += [
            ("retention", retention.run),
            ("activity_folder", activity.run),
            ("rollup_compactor", compactor.run),
        ]
    return tasks
