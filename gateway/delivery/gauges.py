"""Keeps the delivery gauges current: retry-queue depth and DLQ depth per sink, and the
outbox lag (age of the oldest due, unprocessed row of a processor this worker runs).

Rows of sinks that are no longer configured are never claimed (a rolling deploy may still
have workers that know them); they are reported once per refresh as
``delivery.orphaned_rows`` so they are not forgotten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import structlog

from gateway.clock import Clock
from gateway.periodic import run_periodically
from gateway.settings import DeliverySettings
from observability.metrics import Metrics

__all__ = ["GaugeRefresher"]

log = structlog.get_logger("hookline.delivery")

#: the defaults of the delivery tunables (gateway/settings.py holds them)
_DELIVERY = DeliverySettings()

_OUTBOX = """
SELECT sink,
       count(*) FILTER (WHERE attempts > 0 OR due_at > $1) AS waiting,
       min(due_at) FILTER (WHERE due_at <= $1) AS oldest_due
FROM outbox WHERE processor = 'sink' GROUP BY sink
UNION ALL
SELECT NULL, 0, min(due_at) FROM outbox WHERE processor = 'suppressions' AND due_at <= $1
"""
_DLQ = "SELECT sink, count(*) AS n FROM dlq GROUP BY sink"


class GaugeRefresher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: Metrics,
        sinks: Sequence[str],
        clock: Clock,
        *,
        interval_seconds: float = _DELIVERY.gauges_interval_seconds,
    ) -> None:
        self.pool = pool
        self.metrics = metrics
        self.sinks = list(sinks)
        self.clock = clock
        self.interval_seconds = interval_seconds
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            now = self.clock.now()
            async with self.pool.acquire() as conn:
                outbox = await conn.fetch(_OUTBOX, now)
                dlq = await conn.fetch(_DLQ)
            waiting = dict.fromkeys(self.sinks, 0)
            orphaned: dict[str, int] = {}
            oldest = None
            for record in outbox:
                sink = record["sink"]
                if sink is not None and sink not in waiting:
                    orphaned[sink] = record["waiting"]
                    continue
                if sink is not None:
                    waiting[sink] = record["waiting"]
                due = record["oldest_due"]
                if due is not None and (oldest is None or due < oldest):
                    oldest = due
            for sink, count in waiting.items():
                self.metrics.delivery_retry_queue.labels(sink).set(count)
            depth = dict.fromkeys(self.sinks, 0)
            depth.update({record["sink"]: record["n"] for record in dlq})
            for sink, count in depth.items():
                self.metrics.dlq_events.labels(sink).set(count)
            lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
            self.metrics.outbox_lag.set(lag)
            if orphaned:
                log.warning("delivery.orphaned_rows", sinks=sorted(orphaned))

    async def run(self, stop: asyncio.Event) -> None:
        await run_periodically(
            self.refresh,
            stop,
            self.interval_seconds,
            log=log,
            failure_event="delivery.gauges_failed",
        )
