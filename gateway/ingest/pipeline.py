"""From verified events to a durable ack: batcher first, spool when PostgreSQL cannot.

``Ingestor.ingest`` returns only once every event is durable, in PostgreSQL (committed by
the group-commit batcher through the ``IsolatingWriter``, which alone consults the ``storage``
breaker) or in the local spool (fsync'd).
When neither can take them it raises ``StorageUnavailableError`` (HTTP 503 + Retry-After).
Events are made storable first (``gateway/storage/storable.py``), and the items an adapter
rejected are quarantined the same way: in PostgreSQL, or in the spool when it cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from gateway.ingest.batcher import Batcher
from gateway.ingest.isolation import IsolatingWriter
from gateway.storage.quarantine import QuarantineItem
from gateway.storage.storable import storable_events
from handlers.events import EmailEvent
from observability.metrics import Metrics, observe_many

__all__ = ["IngestResult", "IngestSpool", "Ingestor", "StorageUnavailableError"]

log = structlog.get_logger("hookline.ingest")


class StorageUnavailableError(Exception):
    """Neither PostgreSQL nor the spool can make the events durable right now."""


class IngestSpool(Protocol):
    """What the ingestor needs of the local durable spool (``gateway.ingest.spool.Spool``)."""

    async def append(self, events: Sequence[EmailEvent]) -> None:
        """Durably append (fsync) or raise ``SpoolUnavailableError``."""

    async def append_quarantine(self, items: Sequence[QuarantineItem]) -> None:
        """Durably append records to quarantine, like ``append``."""

    def writable(self) -> bool: ...

    @property
    def events(self) -> int:
        """Records held (events and records to quarantine)."""

    def oldest_age_seconds(self) -> float: ...

    def stalled_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int
    spooled: int
    new: list[EmailEvent]
    #: events PostgreSQL refused and rejected items, kept in the quarantine (or the spool)
    quarantined: int = 0


class Ingestor:
    def __init__(
        self,
        batcher: Batcher,
        metrics: Metrics,
        spool: IngestSpool | None = None,
        writer: IsolatingWriter | None = None,
    ) -> None:
        self.batcher = batcher
        self.metrics = metrics
        self.spool = spool
        self.writer = writer

    async def ingest(
        self, events: Sequence[EmailEvent], rejected: Sequence[QuarantineItem] = ()
    ) -> IngestResult:
        """Make ``events`` durable, and quarantine ``rejected`` (parse-stage items)."""
        result = await self._ingest(storable_events(events))
        if rejected:
            await self.quarantine(rejected)
            result = IngestResult(
                result.accepted,
                result.duplicates,
                result.spooled,
                result.new,
                result.quarantined + len(rejected),
            )
        return result

    async def _ingest(self, events: Sequence[EmailEvent]) -> IngestResult:
        if not events:
            return IngestResult(0, 0, 0, [])
        try:
            outcome = await self.batcher.submit(events)
        except Exception as exc:  # queue full, unavailable, breaker open (the writer's)
            return await self._spool(events, exc)
        self._count_stored(outcome.new, outcome.duplicates, events[0].provider)
        return IngestResult(
            len(events) - outcome.quarantined,
            outcome.duplicates,
            0,
            outcome.new,
            outcome.quarantined,
        )

    async def quarantine(self, items: Sequence[QuarantineItem]) -> None:
        """Keep parse-stage rejects durably: in PostgreSQL, else in the spool; counted once
        kept. ``StorageUnavailableError`` when neither can take them."""
        kept = False
        if self.writer is not None:
            try:
                await self.writer.quarantine_items(items)
                kept = True
            except Exception as exc:  # unavailable or breaker open (the writer's): spool
                log.warning("ingest.quarantine_spooled", reason=type(exc).__name__)
        if not kept:
            if self.spool is None or not self.spool.writable():
                raise StorageUnavailableError("database unavailable and no spool room")
            try:
                await self.spool.append_quarantine(items)
            except Exception as exc:
                log.error("ingest.spool_failed", error=type(exc).__name__, records=len(items))
                raise StorageUnavailableError("database unavailable and spool failed") from exc
        for item in items:
            self.metrics.events_quarantined.labels(item.provider, item.stage, item.reason).inc()

    async def _spool(self, events: Sequence[EmailEvent], reason: BaseException) -> IngestResult:
        if self.spool is None or not self.spool.writable():
            log.error(
                "ingest.unavailable",
                reason=type(reason).__name__,
                spool="disabled" if self.spool is None else "unwritable",
                events=len(events),
            )
            raise StorageUnavailableError("database unavailable and no spool room")
        try:
            await self.spool.append(events)
        except Exception as exc:
            log.error("ingest.spool_failed", error=type(exc).__name__, events=len(events))
            raise StorageUnavailableError("database unavailable and spool failed") from exc
        log.info(
            "ingest.spooled",
            reason=type(reason).__name__,
            events=len(events),
        )
        return IngestResult(len(events), 0, len(events), [])

    def _count_stored(self, new: Sequence[EmailEvent], duplicates: int, provider: str) -> None:
        count_stored(self.metrics, new)
        if duplicates:
            self.metrics.events_duplicate.labels(provider).inc(duplicates)


def count_stored(metrics: Metrics, new: Sequence[EmailEvent]) -> None:
    """Count distinct stored events (at write time, or when drained from the spool).

    Counts are aggregated per label set first: a 100-event batch costs a handful of metric
    updates, not a hundred label lookups. Plain dicts, not ``collections.Counter``: this
    runs for every request, and a single event is the most common batch."""
    by_type: dict[tuple[str, str, str], int] = {}
    by_bounce: dict[tuple[str, str, str], int] = {}
    delays: dict[str, list[float]] = {}
    for event in new:
        # event.source is the configured source's name (set by the route, never by the sender)
        key = (event.provider, event.source, event.event_type)  # a StrEnum is its value
        by_type[key] = by_type.get(key, 0) + 1
        if event.bounce_class is not None:
            bounce = (event.provider, event.source, event.bounce_class)
            by_bounce[bounce] = by_bounce.get(bounce, 0) + 1
        delay = (event.received_at - event.occurred_at).total_seconds()
        if delay >= 0:
            delays.setdefault(event.provider, []).append(delay)
    for type_labels, count in by_type.items():
        metrics.events_received.labels(*type_labels).inc(count)
    for labels, count in by_bounce.items():
        metrics.bounces.labels(*labels).inc(count)
    for provider, values in delays.items():
        observe_many(metrics.event_delay.labels(provider), values)
