"""The one storage writer of the ingest path: breaker, idempotent write, poison isolation.

Every write goes through the ``storage`` breaker here (the batcher and the drainer both use
this writer, nothing else calls the breaker for writes). When PostgreSQL refuses a batch
because of its *data* (``gateway/storage/data_errors.py``), the batch is bisected: halves
that store are stored normally (same transaction semantics, same write hooks), and each
single event PostgreSQL still refuses is quarantined with its error, counted and logged,
and the write carries on. A data error never counts against the breaker (its ``exclude``);
only unavailability does, and it propagates so the caller spools or retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from gateway.resilience import AsyncCircuitBreaker
from gateway.storage.data_errors import is_data_error, reason_code
from gateway.storage.database import StorageNotConnectedError
from gateway.storage.quarantine import QuarantineItem, QuarantineStore
from gateway.storage.store import EventStore
from handlers.events import EmailEvent
from observability.metrics import Metrics

__all__ = ["IsolatingWriter", "StoredKeys"]

log = structlog.get_logger("hookline.quarantine")


class StoredKeys(set[str]):
    """The dedup keys that were new, plus ``quarantined``: keys of the events of this write
    that PostgreSQL refused and that were quarantined instead (durably kept too)."""

    quarantined: set[str]

    def __init__(self) -> None:
        super().__init__()
        self.quarantined = set()


class IsolatingWriter:
    def __init__(
        self,
        store: EventStore,
        quarantine: QuarantineStore,
        breaker: AsyncCircuitBreaker,
        metrics: Metrics,
        *,
        connected: asyncio.Event | None = None,
    ) -> None:
        self.store = store
        self.quarantine = quarantine
        self.breaker = breaker
        self.metrics = metrics
        #: set once PostgreSQL has been reached and migrated (None: assume it is)
        self.connected = connected

    async def write(self, events: Sequence[EmailEvent]) -> set[str]:
        """Store ``events``; return the new dedup keys (a ``StoredKeys``). Raises on
        unavailability (nothing quarantined is then lost: it is written on the retry)."""
        if self.connected is not None and not self.connected.is_set():
            raise StorageNotConnectedError  # never reached yet: spool without trying
        try:
            new: set[str] = await self.breaker.call(self.store.write_events, events)
            return new
        except Exception as exc:
            if not is_data_error(exc):
                raise
            error = exc
        keys = StoredKeys()
        await self._bisect(events, error, keys)
        return keys

    async def _bisect(
        self, events: Sequence[EmailEvent], error: BaseException, keys: StoredKeys
    ) -> None:
        if len(events) == 1:
            await self._quarantine_event(events[0], error)
            keys.quarantined.add(events[0].dedup_key)
            return
        middle = len(events) // 2
        for half in (events[:middle], events[middle:]):
            try:
                keys |= await self.breaker.call(self.store.write_events, half)
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                await self._bisect(half, exc, keys)

    async def _quarantine_event(self, event: EmailEvent, error: BaseException) -> None:
        reason = reason_code(error)
        await self.breaker.call(
            self.quarantine.add,
            [QuarantineItem.for_event(event, reason, f"{type(error).__name__}: {error}")],
        )
        self.metrics.events_quarantined.labels(event.provider, "store", reason).inc()
        log.error(
            "storage.event_quarantined",
            provider=event.provider,
            source=event.source,
            reason=reason,
            error=type(error).__name__,
        )

    async def write_or_raise(self, events: Sequence[EmailEvent]) -> set[str]:
        """Store ``events`` or raise, data errors included (a quarantine replay reports
        them instead of quarantining again)."""
        new: set[str] = await self.breaker.call(self.store.write_events, events)
        return new

    async def quarantine_items(self, items: Sequence[QuarantineItem]) -> None:
        """Keep already-counted records (parse-stage rejects, or records from the spool)."""
        if items:
            await self.breaker.call(self.quarantine.add, items)
