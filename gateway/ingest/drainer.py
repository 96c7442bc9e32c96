"""Moves spooled events into PostgreSQL once the storage breaker lets writes through.

Idempotent: events are written with ``EventStore.write_events`` (dedup keys), so a crash
mid-drain re-drains the segment without duplicates. A segment is deleted only after its
events are committed. Damaged records are set aside and counted, never silently dropped.
Writes go through the ingest path's ``IsolatingWriter``: an event PostgreSQL refuses is
quarantined and the drain carries on (it can never hold the spool up), and spooled
quarantine records (parse-stage rejects spooled while PostgreSQL was down) are written to
the quarantine table.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import structlog

from gateway.ingest.isolation import IsolatingWriter, StoredKeys
from gateway.ingest.pipeline import count_stored
from gateway.ingest.spool import Spool, read_segment
from gateway.nonces import NonceStore
from gateway.resilience import AsyncCircuitBreaker
from gateway.settings import StorageSettings
from gateway.storage.storable import storable_events
from observability.metrics import Metrics, observe_many

__all__ = ["SpoolDrainer"]

log = structlog.get_logger("hookline.spool")

#: the defaults of the storage tunables (gateway/settings.py holds them)
_STORAGE = StorageSettings()


class SpoolDrainer:
    def __init__(
        self,
        spool: Spool,
        writer: IsolatingWriter,
        breaker: AsyncCircuitBreaker,
        metrics: Metrics,
        *,
        interval: float = _STORAGE.drain_interval_seconds,
        chunk_events: int = _STORAGE.drain_chunk_events,
        replays: NonceStore | None = None,
    ) -> None:
        self.spool = spool
        self.writer = writer
        self.breaker = breaker
        self.metrics = metrics
        self.interval = interval
        #: spooled events per write transaction
        self.chunk_events = chunk_events
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
            if not await self.writer.store.ping():
                self.spool.note_progress()  # waiting for the database is not being stuck
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
            await self.writer.quarantine_items(result.quarantined)
            for start in range(0, len(result.events), self.chunk_events):
                # a replay found when the nonce journal was merged is not stored or acted on
                spooled = result.events[start : start + self.chunk_events]
                if self.replays is not None:
                    spooled = self.replays.admit(spooled)
                # events spooled by an older version may not have been made storable yet
                chunk = storable_events(spooled)
                written = await self.writer.write(chunk)
                poison = written.quarantined if isinstance(written, StoredKeys) else set()
                new_keys = set(written)
                new = []
                for event in chunk:
                    if event.dedup_key in new_keys:
                        new_keys.discard(event.dedup_key)
                        new.append(event)
                    elif event.dedup_key not in poison:
                        self.metrics.events_duplicate.labels(event.provider).inc()
                count_stored(self.metrics, new)
                stored_at = datetime.now(UTC)  # receipt -> stored, for the freshness SLO
                observe_many(
                    self.metrics.spool_residence,
                    [(stored_at - event.received_at).total_seconds() for event in new],
                )
            self.spool.remove(segment)
            self.metrics.spool_drained.inc(len(result.events))
            moved += len(result.events)
            log.info(
                "spool.segment_drained",
                segment=segment.path.name,
                events=len(result.events),
                quarantine_records=len(result.quarantined),
            )
        if self.replays is not None:
            self.replays.drained()
        return moved
