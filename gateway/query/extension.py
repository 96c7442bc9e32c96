"""Wires the read side into a runtime: the gauges of its backlogs in every process, and
where the background workers run, the rollup compactor, the recipient activity folder and
the retention worker. (The rollups themselves are kept by the ``hookline_rollups`` trigger of
migrations 0003, 0005 and 0006, in the events' own transaction, so every writer — the
ingest batcher, the spool drainer — feeds them without any hook.)"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from gateway.query.activity import ActivityFolder
from gateway.query.compaction import RollupCompactor
from gateway.query.gauges import ReadSideGauges
from gateway.query.retention import Retention

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = ["install_read_side"]


def install_read_side(runtime: Runtime) -> None:
    """A ``RuntimeExtension`` for ``gateway.app._extensions()``."""
    # every process reports the backlogs, so they show (and alert) when no worker runs
    read_side, storage = runtime.settings.read_side, runtime.settings.storage
    gauges = ReadSideGauges(
        runtime.database.pool, runtime.metrics, interval_seconds=read_side.gauges_interval_seconds
    )
    runtime.add_background("read_side_gauges", gauges.run)
    if runtime.serve_workers:
        activity = ActivityFolder(
            runtime.database.pool,
            interval_seconds=read_side.activity_fold_interval_seconds,
            grace=timedelta(seconds=read_side.activity_fold_grace_seconds),
        )
        retention = Retention(
            runtime.database.store,
            retention_days=storage.retention_days,
            interval_seconds=storage.retention_interval_seconds,
            batch_size=storage.retention_batch_rows,
            partitions_ahead_days=storage.partitions_ahead_days,
            activity=activity,
        )
        compactor = RollupCompactor(
            runtime.database.pool,
            interval_seconds=read_side.compaction_interval_seconds,
            batch_rows=read_side.compaction_batch_rows,
        )
        runtime.add_background("retention", retention.run)
        runtime.add_background("activity_folder", activity.run)
        runtime.add_background("rollup_compactor", compactor.run)
