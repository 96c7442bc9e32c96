"""The read side's background work: the gauges of its backlogs in every process, and where
the background workers run, the rollup compactor, the recipient activity folder and the
retention worker. (The rollups themselves are kept by the ``hookline_rollups`` trigger of
migrations 0003, 0005 and 0006, in the events' own transaction, so every writer — the
ingest batcher, the spool drainer — feeds them without any hook.) ``gateway/app.py`` runs
these tasks."""

from __future__ import annotations

import asyncpg

from gateway.periodic import BackgroundTask
from gateway.query.activity import ActivityFolder
from gateway.query.compaction import RollupCompactor
from gateway.query.gauges import ReadSideGauges
from gateway.query.retention import Retention
from gateway.storage.store import EventStore
from observability.metrics import Metrics

__all__ = ["read_side_tasks"]


def read_side_tasks(
    pool: asyncpg.Pool,
    store: EventStore,
    metrics: Metrics,
    *,
    retention_days: int,
    runs_workers: bool,
) -> list[tuple[str, BackgroundTask]]:
    """The named background tasks of the read side for one process."""
    # every process reports the backlogs, so they show (and alert) when no worker runs
    tasks: list[tuple[str, BackgroundTask]] = [
        ("read_side_gauges", ReadSideGauges(pool, metrics).run)
    ]
    if runs_workers:
        activity = ActivityFolder(pool)
        retention = Retention(store, retention_days=retention_days, activity=activity)
        tasks += [
            ("retention", retention.run),
            ("activity_folder", activity.run),
            ("rollup_compactor", RollupCompactor(pool).run),
        ]
    return tasks
