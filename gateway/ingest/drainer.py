"""Moves spooled events into PostgreSQL once the storage breaker lets writes through.

Idempotent: events are written with ``EventStore.write_events`` (dedup keys), so a crash
mid-drain re-drains the segment without duplicates. A segment is deleted only after its
events are committed. Damaged records are set aside and counted, never silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from gateway.ingest.pipeline import count_stored
from gateway.ingest.spool import Spool, read_segment
from gateway.nonces import NonceStore
from gateway.resilience import AsyncCircuitBreaker
from gateway.storage.store import EventStore
from observability.metrics import Metrics

__all__ = ["SpoolDrainer"]

log = structlog.get_logger("hookline.spool")

#: events written per transaction while draining
DRAIN_CHUNK = 5000


class SpoolDrainer:
    def __init__(
        self,
        spool: Spool,
        store: EventStore,
        breaker: AsyncCircuitBreaker,
        metrics: Metrics,
        *,
        interval: float = 0.5,
        replays: NonceStore | None = None,
    ) -> None:
        self.spool = spool
        self.store = store
        self.breaker = breaker
        self.metrics = metrics
        self.interval = interval
        #: nonces journaled during an outage: merged before any spooled event is written
        self.replays = replays

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.drain_once()
            except Exception as exc:  # DB trouble: the breaker counted it; try later
                log.warning("spool.drain_paused", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)

    async def drain_once(self) -> int:
        """Drain every segment the breaker allows; return the events moved."""
        if self.spool.events == 0 and not any(True for _ in self.spool.closed_segments()):
            if self.replays is not None and self.replays.pending() and self.breaker.allows_call():
                await self.replays.merge_journal()  # nothing spooled: safe to merge any time
            return 0
        if not self.breaker.allows_call():
            return 0
        await self.spool.rotate()
        if self.replays is not None:
            await self.replays.merge_journal()
        moved = 0
        for segment in list(self.spool.closed_segments()):
            data = await asyncio.to_thread(segment.path.read_bytes)
            result = read_segment(data)
            if result.corrupt:
                kept = self.spool.set_aside(segment, result.corrupt)
                self.metrics.spool_corrupt_records.inc(len(result.corrupt))
                log.error(
                    "spool.corrupt_record",
                    segment=segment.path.name,
                    damaged_stretches=len(result.corrupt),
                    kept_at=[str(path) for path in kept],
                )
            for start in range(0, len(result.events), DRAIN_CHUNK):
                chunk = result.events[start : start + DRAIN_CHUNK]
                if self.replays is not None:
                    chunk = self.replays.admit(chunk)
                new_keys = await self.breaker.call(self.store.write_events, chunk)
                new = []
                for event in chunk:
                    if event.dedup_key in new_keys:
                        new_keys.discard(event.dedup_key)
                        new.append(event)
                    else:
                        self.metrics.events_duplicate.labels(event.provider).inc()
                count_stored(self.metrics, new)
            self.spool.remove(segment)
            self.metrics.spool_drained.inc(len(result.events))
            moved += len(result.events)
            log.info("spool.segment_drained", segment=segment.path.name, events=len(result.events))
        if self.replays is not None:
            self.replays.drained()
        return moved
