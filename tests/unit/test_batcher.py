"""Group commit: concurrent requests share a flush; results map back to each request;
duplicates inside a batch are counted; a full queue is refused at once; failures reach
every waiting request. The writer is a fake: this is a pure unit test of the batcher."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from gateway.ingest.batcher import Batcher, QueueFullError, WriteOutcome
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


class ConcurrencyProbe:
    """A writer that records how many writes overlap; each write waits at its own gate
    (``gates[i]`` for the i-th write) until the test opens it, or ``release()`` opens all."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most_in_flight = 0
        self.gates: list[asyncio.Event] = []
        self.open = False
        self.written: list[str] = []

    def release(self) -> None:
        self.open = True
        for gate in self.gates:
            gate.set()

    async def write(self, events: Sequence[EmailEvent]) -> set[str]:
        gate = asyncio.Event()
        if self.open:
            gate.set()
        self.gates.append(gate)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await gate.wait()
        finally:
            self.in_flight -= 1
        self.written.extend(e.dedup_key for e in events)
        return {e.dedup_key for e in events}


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition`` holds (bounded: the test fails, never hangs)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never held")


async def test_no_more_than_max_flushes_in_flight_write_at_once() -> None:
    """With two flush slots and writes that do not finish, exactly two flushes start; the
    other requests wait in the queue and are written once a slot frees."""
    probe = ConcurrencyProbe()
    batcher = Batcher(probe.write, Metrics(), batch_max_events=1, max_flushes_in_flight=2)
    batcher.start()
    requests = [asyncio.ensure_future(batcher.submit([event(f"s{i}")])) for i in range(6)]
    await until(lambda: probe.in_flight >= 2)
    for _ in range(20):  # give a third flush every chance to start
        await asyncio.sleep(0)
    assert (probe.in_flight, probe.most_in_flight) == (2, 2)
    probe.release()
    outcomes = await asyncio.gather(*requests)
    await batcher.close()
    assert [len(o.new) for o in outcomes] == [1] * 6
    assert sorted(probe.written) == sorted(f"s{i}" for i in range(6))
    assert probe.most_in_flight == 2


async def test_close_flushes_every_queued_request_before_stopping() -> None:
    """Requests still queued when ``close()`` is called (the only flush slot busy, enough
    of them for three more batches) are written and answered before ``close()`` returns;
    later submits are refused."""
    probe = ConcurrencyProbe()
    metrics = Metrics()
    batcher = Batcher(probe.write, metrics, batch_max_events=2, max_flushes_in_flight=1)
    batcher.start()
    first = asyncio.ensure_future(batcher.submit([event("busy")]))
    await until(lambda: probe.in_flight == 1)
    queued = [asyncio.ensure_future(batcher.submit([event(f"q{i}")])) for i in range(5)]
    await until(lambda: metrics.registry.get_sample_value("hookline_ingest_queue_events") == 5)
    closing = asyncio.ensure_future(batcher.close())
    await asyncio.sleep(0)
    probe.release()
    await closing
    assert all(request.done() for request in [first, *queued])
    assert [len(request.result().new) for request in queued] == [1] * 5
    assert sorted(probe.written) == sorted(["busy", *(f"q{i}" for i in range(5))])
    with pytest.raises(QueueFullError):
        await batcher.submit([event("late")])


async def test_a_cancelled_waiter_does_not_disturb_the_others_in_its_flush() -> None:
    """A request cancelled while its flush is in flight gets CancelledError; its events
    are still written (they were handed over), the other requests in the same flush get
    their own results, and the batcher goes on serving."""
    probe = ConcurrencyProbe()
    metrics = Metrics()
    batcher = Batcher(probe.write, metrics, max_flushes_in_flight=1)
    batcher.start()
    first = asyncio.ensure_future(batcher.submit([event("busy")]))
    await until(lambda: probe.in_flight == 1)
    # these three queue behind "busy" and are then flushed together
    requests = [asyncio.ensure_future(batcher.submit([event(f"w{i}")])) for i in range(3)]
    await until(lambda: metrics.registry.get_sample_value("hookline_ingest_queue_events") == 3)
    probe.gates[0].set()
    await until(lambda: len(probe.gates) == 2 and probe.in_flight == 1)
    requests[1].cancel()  # its flush is now in flight
    await asyncio.sleep(0)
    probe.release()
    results = await asyncio.wait_for(asyncio.gather(*requests, return_exceptions=True), 5)
    assert isinstance(results[1], asyncio.CancelledError)
    assert [len(r.new) for r in (results[0], results[2]) if isinstance(r, WriteOutcome)] == [1, 1]
    assert (await first).new[0].dedup_key == "busy"
    later = await asyncio.wait_for(batcher.submit([event("after")]), 5)
    await batcher.close()
    assert [e.dedup_key for e in later.new] == ["after"]
    assert sorted(probe.written) == ["after", "busy", "w0", "w1", "w2"]
