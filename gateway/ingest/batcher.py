"""Group commit: many concurrent requests, one transaction.

Requests ``submit`` their events and await the result. A single flusher task takes
everything queued (whole requests, up to ``batch_max_events``) as soon as a flush slot is
free, so under light load a request is written immediately and under heavy load batches grow
by themselves: no timer adds latency. At most ``max_flushes_in_flight`` flushes run at once;
the queue is bounded (``queue_max_events``) and a full queue is reported to the caller, who
spools or refuses, so memory never grows without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, Tracer

from gateway.ingest.isolation import StoredKeys
from gateway.settings import IngestSettings
from handlers.events import EmailEvent
from observability.metrics import Metrics

__all__ = ["Batcher", "QueueFullError", "WriteOutcome"]

#: the defaults of the ingest tunables (gateway/settings.py holds them)
_INGEST = IngestSettings()

#: stores a batch in one transaction; returns the dedup keys that were new
BatchWriter = Callable[[Sequence[EmailEvent]], Awaitable[set[str]]]


class QueueFullError(Exception):
    """The batcher holds its maximum number of events; the caller must spool or refuse."""


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """For one request: which of its events were new, how many were duplicates, and how
    many PostgreSQL refused and were quarantined instead (kept durably, see isolation.py)."""

    new: list[EmailEvent]
    duplicates: int
    quarantined: int = 0


@dataclass(slots=True)
class _Pending:
    events: Sequence[EmailEvent]
    future: asyncio.Future[WriteOutcome]
    span_context: SpanContext | None = None


class Batcher:
    def __init__(
        self,
        write: BatchWriter,
        metrics: Metrics,
        *,
        batch_max_events: int = _INGEST.batch_max_events,
        max_flushes_in_flight: int = _INGEST.max_flushes_in_flight,
        queue_max_events: int = _INGEST.queue_max_events,
        tracer: Tracer | None = None,
    ) -> None:
        self._write = write
        self._tracer = tracer or trace.get_tracer("hookline")
        self._metrics = metrics
        self._batch_max = batch_max_events
        self._queue: deque[_Pending] = deque()
        self._queued_events = 0
        self._queue_max = queue_max_events
        self._slots = asyncio.Semaphore(max_flushes_in_flight)
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._closing = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="hookline-batcher")

    async def submit(self, events: Sequence[EmailEvent]) -> WriteOutcome:
        """Queue ``events`` for the next flush and wait until they are committed.

        Raises ``QueueFullError`` at once when the queue is full, and whatever the writer
        raised when the flush failed (the events are then not stored).
        """
        if self._closing:
            raise QueueFullError("batcher is shutting down")
        if self._queued_events + len(events) > self._queue_max and self._queued_events:
            raise QueueFullError(f"{self._queued_events} events queued")
        future: asyncio.Future[WriteOutcome] = asyncio.get_running_loop().create_future()
        context = trace.get_current_span().get_span_context()
        self._queue.append(_Pending(events, future, context if context.is_valid else None))
        self._queued_events += len(events)
        self._metrics.ingest_queue_events.set(self._queued_events)
        self._wakeup.set()
        # not shielded: a cancelled request cancels only its own future, which the flush
        # then skips (its events, handed over, are written all the same)
        return await future

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._slots.acquire()
            batch = self._take()
            task = asyncio.create_task(self._flush(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        size = 0
        while self._queue and (not batch or size + len(self._queue[0].events) <= self._batch_max):
            pending = self._queue.popleft()
            batch.append(pending)
            size += len(pending.events)
        self._queued_events -= size
        self._metrics.ingest_queue_events.set(self._queued_events)
        return batch

    async def _flush(self, batch: list[_Pending]) -> None:
        try:
            events = [event for pending in batch for event in pending.events]
            links = [Link(p.span_context) for p in batch if p.span_context is not None]
            started = time.perf_counter()
            try:
                with self._tracer.start_as_current_span(
                    "storage.flush",
                    links=links,
                    attributes={
                        "hookline.batch_events": len(events),
                        "hookline.requests": len(batch),
                    },
                ):
                    new_keys = await self._write(events)
            except BaseException as exc:
                self._metrics.storage_flush_failures.inc()
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            self._metrics.storage_flush_duration.observe(time.perf_counter() - started)
            self._metrics.storage_batch_size.observe(len(events))
            claimed: set[str] = set()
            poison = new_keys.quarantined if isinstance(new_keys, StoredKeys) else set()
            for pending in batch:
                new: list[EmailEvent] = []
                quarantined = 0
                for event in pending.events:
                    if event.dedup_key in new_keys and event.dedup_key not in claimed:
                        claimed.add(event.dedup_key)
                        new.append(event)
                    elif poison and event.dedup_key in poison:
                        quarantined += 1
                outcome = WriteOutcome(
                    new=new,
                    duplicates=len(pending.events) - len(new) - quarantined,
                    quarantined=quarantined,
                )
                if not pending.future.done():
                    pending.future.set_result(outcome)
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Flush what is queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
