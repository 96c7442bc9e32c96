"""The tunables set in the configuration reach the components that use them: the runtime
built from settings with a non-default value for each runs its workers with those values
(not the components' own defaults)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.app import build_runtime
from gateway.runtime import Runtime
from observability.metrics import Metrics
from tests.integration.conftest import build_settings

TUNED = {
    "storage": {
        "drain_chunk_events": 123,
        "drain_interval_seconds": 0.7,
        "retention_interval_seconds": 77.0,
        "retention_batch_rows": 321,
        "partitions_ahead_days": 5,
    },
    "ingest": {"nonce_memory_max": 999},
    "sns": {
        "breaker_fail_max": 9,
        "breaker_reset_seconds": 41.0,
        "failure_ttl_seconds": 61.0,
        "transient_failure_ttl_seconds": 6.0,
        "max_hosts": 7,
        "certificate_timeout_seconds": 2.5,
    },
    "delivery": {
        "dispatcher_loops": 3,
        "batch_size": 17,
        "concurrency": 5,
        "housekeeping_interval_seconds": 42.0,
        "gauges_interval_seconds": 4.5,
    },
    "read_side": {
        "compaction_interval_seconds": 3.5,
        "compaction_batch_rows": 1234,
        "activity_fold_interval_seconds": 33.0,
        "activity_fold_grace_seconds": 90.0,
        "gauges_interval_seconds": 12.0,
    },
}


def _owners(runtime: Runtime) -> dict[str, Any]:
    """The object behind each background task (its ``run`` is a bound method)."""
    return {name: getattr(task, "__self__", None) for name, task in runtime.background}


async def test_every_tuned_value_reaches_its_component(fresh_db_url: str, tmp_path: Path) -> None:
    """Drainer, retention, read-side workers, delivery loops, nonce memory and the SNS
    certificate fetcher run with the configured values."""
    settings = build_settings(fresh_db_url, tmp_path, **TUNED)
    runtime = await build_runtime(settings, Metrics(), serve_workers=True)
    try:
        owners = _owners(runtime)
        drainer = owners["spool-drainer"]
        assert (drainer.chunk_events, drainer.interval) == (123, 0.7)
        retention = owners["retention"]
        assert (retention.interval_seconds, retention.batch_size) == (77.0, 321)
        assert retention.partitions_ahead_days == 5
        folder = owners["activity_folder"]
        assert (folder.interval_seconds, folder.grace) == (33.0, timedelta(seconds=90))
        compactor = owners["rollup_compactor"]
        assert (compactor.interval_seconds, compactor.batch_rows) == (3.5, 1234)
        assert owners["read_side_gauges"].interval_seconds == 12.0
        dispatchers = [name for name in owners if name.startswith("delivery-dispatcher-")]
        assert len(dispatchers) == 3
        dispatcher = owners[dispatchers[0]]
        assert (dispatcher.batch_size, dispatcher.concurrency) == (17, 5)
        assert owners["delivery-gauges"].interval_seconds == 4.5
        service = owners["delivery-housekeeping"]
        assert service.settings.delivery.housekeeping_interval_seconds == 42.0
        assert runtime.nonces.memory_max == 999
        breaker = runtime.certificates.breaker_for("sns.us-east-1.amazonaws.com")
        assert breaker.reset_timeout == 41.0
        for host in range(10):  # beyond max_hosts, hosts share sns:other
            runtime.certificates.breaker_for(f"sns.region-{host}.amazonaws.com")
        assert runtime.certificates.breaker_for("sns.late.amazonaws.com").name == "sns:other"
    finally:
        await runtime.close()
