"""Group commit: concurrent requests share a flush; results map back to each request;
duplicates inside a batch are counted; a full queue is refused at once; failures reach
every waiting request. The writer is a fake: this is a pure unit test of the batcher."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from gateway.ingest.batcher import Batcher, QueueFullError
from handlers.events import EmailEvent, EventType
from observability.metrics import Metrics

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(key: str) -> EmailEvent:
    return EmailEvent(
        provider="sendgrid",
        source="main",
        event_type=EventType.DELIVERED,
        occurred_at=NOW,
        received_at=NOW,
        recipient="a@example.com",
        message_id="m",
        dedup_key=key,
    )


class FakeStore:
    def __init__(self, delay: float = 0.01, fail: bool = False) -> None:
        self.seen: set[str] = set()
        self.batches: list[int] = []
        self.delay = delay
        self.fail = fail

    async def write(self, events: Sequence[EmailEvent]) -> set[str]:
        self.batches.append(len(events))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise OSError("database down")
        new = {e.dedup_key for e in events} - self.seen
        self.seen |= new
        return new


async def test_concurrent_requests_share_flushes_and_get_their_own_results() -> None:
    store = FakeStore()
    batcher = Batcher(store.write, Metrics(), max_flushes_in_flight=1)
    batcher.start()
    outcomes = await asyncio.gather(
        *[batcher.submit([event(f"k{i}a"), event(f"k{i}b")]) for i in range(50)]
    )
    await batcher.close()
    assert all(len(o.new) == 2 and o.duplicates == 0 for o in outcomes)
    assert sum(store.batches) == 100
    assert len(store.batches) < 50, "requests were not grouped"


async def test_duplicates_within_and_across_batches_are_counted_once() -> None:
    store = FakeStore()
    batcher = Batcher(store.write, Metrics())
    batcher.start()
    first, second = await asyncio.gather(
        batcher.submit([event("same"), event("x")]), batcher.submit([event("same")])
    )
    third = await batcher.submit([event("x")])
    await batcher.close()
    assert len(first.new) + len(second.new) == 2  # "same" counted new exactly once
    assert first.duplicates + second.duplicates == 1
    assert (len(third.new), third.duplicates) == (0, 1)


async def test_batch_size_is_capped() -> None:
    store = FakeStore()
    batcher = Batcher(store.write, Metrics(), batch_max_events=10, max_flushes_in_flight=1)
    batcher.start()
    await asyncio.gather(*[batcher.submit([event(f"c{i}")]) for i in range(35)])
    await batcher.close()
    assert max(store.batches) <= 10


async def test_full_queue_is_refused_immediately() -> None:
    store = FakeStore(delay=0.2)
    batcher = Batcher(store.write, Metrics(), queue_max_events=3, max_flushes_in_flight=1)
    batcher.start()
    first = asyncio.ensure_future(batcher.submit([event("a")]))
    await asyncio.sleep(0.01)  # "a" is being flushed; the queue is empty again
    pending = [asyncio.ensure_future(batcher.submit([event(f"q{i}")])) for i in range(3)]
    await asyncio.sleep(0)
    with pytest.raises(QueueFullError):
        await batcher.submit([event("overflow")])
    await asyncio.gather(first, *pending)
    await batcher.close()


async def test_a_failed_flush_fails_every_request_in_it() -> None:
    metrics = Metrics()
    batcher = Batcher(FakeStore(fail=True).write, metrics)
    batcher.start()
    results = await asyncio.gather(
        *[batcher.submit([event(f"f{i}")]) for i in range(5)], return_exceptions=True
    )
    await batcher.close()
    assert all(isinstance(r, OSError) for r in results)
    assert metrics.registry.get_sample_value("hookline_storage_flush_failures_total") >= 1
