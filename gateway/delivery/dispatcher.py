"""The dispatcher: claims due outbox rows and runs the processors on them.

``run_once`` is one pass: claim up to ``batch_size`` due rows (skipping sinks whose breaker
is open), apply the suppression rows in one transaction, deliver the sink rows concurrently
(at most ``concurrency`` requests in flight), then write every outcome back in one
transaction. Tests call it directly with a ``ManualClock``; ``run`` loops over it until told
to stop, waking on ``wake()`` (LISTEN/NOTIFY) or after an idle back-off (200 ms up to 1 s).

Several dispatchers (loops in one process, or processes on several machines) share the
outbox safely: claims use ``FOR UPDATE SKIP LOCKED`` and a lease; a dispatcher that dies
leaves its lease to expire and another one takes the rows over.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable, Callable, Sequence

import structlog

from gateway.clock import Clock
from gateway.delivery.models import SINK, SUPPRESSIONS, ClaimedRow, Outcome, RowResult
from gateway.delivery.processors.base import Deliverer
from gateway.delivery.processors.suppressions import SuppressionProcessor
from gateway.delivery.queue import OutboxQueue
from gateway.settings import DeliverySettings
from gateway.storage.errors import DB_ERRORS
from observability.metrics import Metrics

__all__ = ["Dispatcher"]

log = structlog.get_logger("hookline.delivery")

#: the defaults of the delivery tunables (gateway/settings.py holds them)
_DELIVERY = DeliverySettings()


class Dispatcher:
    def __init__(
        self,
        queue: OutboxQueue,
        *,
        sinks: Sequence[Deliverer],
        suppressions: SuppressionProcessor | None,
        metrics: Metrics,
        clock: Clock,
        batch_size: int = _DELIVERY.batch_size,
        concurrency: int = _DELIVERY.concurrency,
        lease_seconds: float | None = None,
        idle_min_seconds: float = 0.2,
        idle_max_seconds: float = 1.0,
        on_dead_letter: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.queue = queue
        self.sinks = {sink.name: sink for sink in sinks}
        self.suppressions = suppressions
        self.metrics = metrics
        self.clock = clock
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds or default_lease(sinks, batch_size, concurrency)
        self.idle_min_seconds = idle_min_seconds
        self.idle_max_seconds = idle_max_seconds
        self.on_dead_letter = on_dead_letter
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New work was committed (NOTIFY): end any idle wait now."""
        self._wake.set()

    async def run_once(self) -> int:
        """One pass; returns the number of rows claimed."""
        now = self.clock.now()
        open_sinks = [name for name, sink in self.sinks.items() if sink.breaker.allows_call()]
        rows = await self.queue.claim(
            now,
            limit=self.batch_size,
            lease_seconds=self.lease_seconds,
            sinks=open_sinks,
            suppressions=self.suppressions is not None,
        )
        if not rows:
            return 0
        suppression_rows = [row for row in rows if row.processor == SUPPRESSIONS]
        sink_rows = [row for row in rows if row.processor == SINK]
        if suppression_rows and self.suppressions is not None:
            await self.suppressions.process(suppression_rows)
        if sink_rows:
            results = await asyncio.gather(*(self._deliver(row) for row in sink_rows))
            await self._finish(results)
        return len(rows)

    async def _deliver(self, row: ClaimedRow) -> RowResult:
        async with self._slots:
            return await self.sinks[row.sink].deliver(row)

    async def _finish(self, results: Sequence[RowResult]) -> None:
        report = await self.queue.finish(results, self.clock.now())
        if report.lost:
            log.warning("delivery.claim_lost", rows=report.lost)
        for result in results:
            if result.outcome in (Outcome.DEAD_LETTERED, Outcome.PERMANENT_FAILURE):
                attempt = result.attempt
                log.warning(
                    "delivery.dead_lettered",
                    sink=result.row.sink,
                    dedup_key=result.row.dedup_key,
                    event_type=result.row.event_type,
                    attempts=result.attempts,
                    reason=result.outcome.value,
                    error=attempt.error if attempt is not None else None,
                )
        for sink in report.dead_lettered:
            self.metrics.dlq_added.labels(sink).inc()
        now = self.clock.now()
        for result in results:
            if result.outcome is Outcome.SUCCESS:  # stored -> delivered, for the delivery SLO
                waited = (now - result.row.created_at).total_seconds()
                self.metrics.delivery_end_to_end.labels(result.row.sink).observe(max(waited, 0.0))
        if report.dead_lettered and self.on_dead_letter is not None:
            await self.on_dead_letter()

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until ``stop`` is set; the current pass always completes (graceful)."""
        stopper = asyncio.create_task(_relay(stop, self._wake))
        idle = self.idle_min_seconds
        try:
            while not stop.is_set():
                try:
                    claimed = await self.run_once()
                except DB_ERRORS as exc:
                    log.error("delivery.pass_failed", error=type(exc).__name__)
                    claimed = 0
                    idle = self.idle_max_seconds
                if claimed:
                    idle = self.idle_min_seconds
                    await asyncio.sleep(0)
                    continue
                if stop.is_set():
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=idle)
                if self._wake.is_set():
                    idle = self.idle_min_seconds
                else:
                    idle = min(idle * 2, self.idle_max_seconds)
        finally:
            stopper.cancel()


async def _relay(stop: asyncio.Event, wake: asyncio.Event) -> None:
    await stop.wait()
    wake.set()


def default_lease(sinks: Sequence[Deliverer], batch_size: int, concurrency: int) -> float:
    """A lease long enough for a whole pass against the slowest sink, with room to spare."""
    slowest = max((sink.timeout for sink in sinks), default=10.0)
    rounds = math.ceil(batch_size / max(concurrency, 1))
    return max(300.0, 2 * rounds * slowest + 30.0)
