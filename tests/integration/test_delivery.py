"""Delivery to HTTP sinks end to end: real PostgreSQL outbox, real local HTTP servers as
sinks, a manual clock for retry timing (no sleeps), Standard Webhooks signatures checked
with the ``standardwebhooks`` package."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from gateway.clock import ManualClock
from gateway.delivery import webhook_id
from handlers.events import BounceClass, EventType
from tests.integration.delivery_support import (
    Reply,
    SinkServer,
    always,
    delivery_stack,
    event,
    fails_then_recovers,
    healthy,
    sink,
    sink_servers,
    slow,
)


async def test_healthy_sink_gets_each_event_once_signed_per_standard_webhooks(
    fresh_db_url: str,
) -> None:
    """Each new event is POSTed once, as JSON, with a Standard Webhooks signature that the
    reference library verifies, a webhook-id derived from (sink, event) and a traceparent."""
    server = SinkServer(healthy)
    async with sink_servers(server):
        config = sink("crm", server)
        async with delivery_stack(fresh_db_url, sinks=[config]) as stack:
            events = [event(i) for i in range(3)]
            await stack.write(events)
            assert await stack.drain() == 3
            verifier = Webhook(config["secret"])
            assert len(server.received) == 3
            by_id = {record.webhook_id: record for record in server.received}
            for item in events:
                record = by_id[webhook_id("crm", item.dedup_key)]
                payload = verifier.verify(record.body, record.headers)
                assert payload["type"] == "email.delivered"
                assert payload["data"]["dedup_key"] == item.dedup_key
                assert payload["data"]["recipient"] == item.recipient
                assert record.headers["content-type"] == "application/json"
                assert record.headers["traceparent"].startswith("00-")
            assert await stack.scalar("SELECT count(*) FROM outbox") == 0
            assert (
                stack.metric("hookline_delivery_attempts_total", sink="crm", outcome="success") == 3
            )
            assert stack.metric("hookline_delivery_duration_seconds_count", sink="crm") == 3
            # stored -> delivered, for the delivery SLO: all three within its 300 s
            e2e = "hookline_delivery_end_to_end_seconds"
            assert stack.metric(f"{e2e}_count", sink="crm") == 3
            assert stack.metric(f"{e2e}_bucket", sink="crm", le="300.0") == 3


async def test_a_tampered_body_fails_verification(fresh_db_url: str) -> None:
    """The signature covers the body: a consumer rejects a modified delivery."""
    server = SinkServer(healthy)
    async with sink_servers(server):
        config = sink("crm", server)
        async with delivery_stack(fresh_db_url, sinks=[config]) as stack:
            await stack.write([event(1)])
            await stack.drain()
            record = server.received[0]
            with pytest.raises(Exception, match="signature"):
                Webhook(config["secret"]).verify(record.body + b" ", record.headers)


async def test_sink_event_type_filter(fresh_db_url: str) -> None:
    """A sink with ``event_types`` only receives those types; a sink without gets all."""
    only_bounces, everything = SinkServer(healthy), SinkServer(healthy)
    async with (
        sink_servers(only_bounces, everything),
        delivery_stack(
            fresh_db_url,
            sinks=[
                sink("bounces", only_bounces, event_types=["bounced", "complained"]),
                sink("all", everything),
            ],
        ) as stack,
    ):
        await stack.write(
            [
                event(1),
                event(2, event_type=EventType.BOUNCED, bounce_class=BounceClass.HARD),
                event(3, event_type=EventType.OPENED),
            ]
        )
        await stack.drain()
        assert [r.json()["type"] for r in only_bounces.received] == ["email.bounced"]
        assert len(everything.received) == 3


async def test_duplicate_writes_are_delivered_once(fresh_db_url: str) -> None:
    """An event written twice (an ESP redelivery) enqueues and delivers once."""
    server = SinkServer(healthy)
    async with (
        sink_servers(server),
        delivery_stack(fresh_db_url, sinks=[sink("crm", server)]) as stack,
    ):
        events = [event(i) for i in range(4)]
        assert len(await stack.write(events)) == 4
        assert await stack.write(events) == set()
        await stack.drain()
        await stack.write(events)
        await stack.drain()
        assert sorted(server.ids()) == sorted(webhook_id("crm", item.dedup_key) for item in events)


async def test_failing_sink_is_retried_with_backoff_until_it_recovers(fresh_db_url: str) -> None:
    """Fails twice then answers 200: attempts at t0, t0+1s, t0+3s (full jitter with
    random()=1 gives delays of base*2**(n-1)), the same webhook-id every time."""
    clock = ManualClock()
    t0 = clock.now()
    server = SinkServer(fails_then_recovers(2), clock)
    async with (
        sink_servers(server),
        delivery_stack(
            fresh_db_url, sinks=[sink("crm", server, backoff_base_seconds=1.0)], clock=clock
        ) as stack,
    ):
        await stack.write([event(1, at=t0)])
        assert await stack.service.dispatcher.run_once() == 1
        assert await stack.service.dispatcher.run_once() == 0  # not due yet
        clock.advance(0.999)
        assert await stack.service.dispatcher.run_once() == 0
        clock.advance(0.001)
        assert await stack.service.dispatcher.run_once() == 1
        clock.advance(1.0)
        assert await stack.service.dispatcher.run_once() == 0
        clock.advance(1.0)
        assert await stack.service.dispatcher.run_once() == 1
        assert [(r.at - t0).total_seconds() for r in server.received] == [0.0, 1.0, 3.0]
        assert len(set(server.ids())) == 1
        assert [r.headers["webhook-timestamp"] for r in server.received] == [
            str(int((t0 + timedelta(seconds=s)).timestamp())) for s in (0, 1, 3)
        ]
        assert stack.metric("hookline_delivery_attempts_total", sink="crm", outcome="retry") == 2
        assert stack.metric("hookline_delivery_attempts_total", sink="crm", outcome="success") == 1
        assert await stack.scalar("SELECT count(*) FROM outbox") == 0


async def test_always_failing_sink_exhausts_attempts_into_the_dlq(fresh_db_url: str) -> None:
    """Always 500 with max_attempts=4: attempts at 0, 1, 3, 7 s, then the DLQ holds the
    delivery with its last error and the whole attempt history; gauges follow."""
    clock = ManualClock()
    t0 = clock.now()
    server = SinkServer(always(500), clock)
    async with (
        sink_servers(server),
        delivery_stack(
            fresh_db_url,
            sinks=[sink("crm", server, max_attempts=4, breaker_fail_max=100)],
            clock=clock,
        ) as stack,
    ):
        item = event(1, at=t0)
        await stack.write([item])
        for step in (0, 1, 2, 4):
            clock.advance(step)
            assert await stack.service.dispatcher.run_once() == 1
        clock.advance(3600)
        assert await stack.service.dispatcher.run_once() == 0
        assert [(r.at - t0).total_seconds() for r in server.received] == [0, 1, 3, 7]
        entries = await stack.service.dlq.list()
        assert len(entries) == 1
        entry = entries[0]
        assert (entry.sink, entry.dedup_key, entry.reason) == ("crm", item.dedup_key, "exhausted")
        assert entry.attempts == 4
        assert entry.last_status == 500
        assert entry.last_error.startswith("HTTP 500")
        assert entry.webhook_id == webhook_id("crm", item.dedup_key)
        assert [h["attempt"] for h in entry.history] == [1, 2, 3, 4]
        assert {h["status"] for h in entry.history} == {500}
        assert await stack.scalar("SELECT count(*) FROM outbox") == 0
        outcome = "hookline_delivery_attempts_total"
        assert stack.metric(outcome, sink="crm", outcome="retry") == 3
        assert stack.metric(outcome, sink="crm", outcome="dead_lettered") == 1
        assert stack.metric("hookline_dlq_added_total", sink="crm") == 1
        assert stack.metric("hookline_dlq_events", sink="crm") == 1


async def test_gone_goes_straight_to_the_dlq_and_does_not_trip_the_breaker(
    fresh_db_url: str,
) -> None:
    """410 is permanent: one attempt, DLQ (reason permanent); the breaker (fail_max=1) stays
    closed because the consumer answered."""
    server = SinkServer(always(410))
    async with (
        sink_servers(server),
        delivery_stack(fresh_db_url, sinks=[sink("crm", server, breaker_fail_max=1)]) as stack,
    ):
        await stack.write([event(1), event(2)])
        await stack.drain()
        assert len(server.received) == 2
        entries = await stack.service.dlq.list()
        assert [(e.reason, e.attempts, e.last_status) for e in entries] == [
            ("permanent", 1, 410),
            ("permanent", 1, 410),
        ]
        assert stack.service.breakers["crm"].state == "closed"
        assert stack.metric("hookline_circuit_breaker_state", breaker="sink:crm") == 0
        assert (
            stack.metric(
                "hookline_delivery_attempts_total", sink="crm", outcome="permanent_failure"
            )
            == 2
        )


async def test_timeout_is_a_retryable_failure_that_counts_for_the_breaker(
    fresh_db_url: str,
) -> None:
    """A sink slower than timeout_seconds: the attempt fails as a timeout, is rescheduled,
    and (fail_max=1) opens the breaker."""
    clock = ManualClock()
    server = SinkServer(slow(3.0), clock)
    async with (
        sink_servers(server),
        delivery_stack(
            fresh_db_url,
            sinks=[sink("crm", server, timeout_seconds=0.2, breaker_fail_max=1)],
            clock=clock,
        ) as stack,
    ):
        await stack.write([event(1, at=clock.now())])
        assert await stack.service.dispatcher.run_once() == 1
        row = (await stack.rows("SELECT attempts, last_error, due_at FROM outbox"))[0]
        assert row["attempts"] == 1
        assert row["last_error"] == "timeout after 0.2s"
        assert row["due_at"] == clock.now() + timedelta(seconds=1)
        assert stack.service.breakers["crm"].state == "open"
        assert stack.metric("hookline_circuit_breaker_state", breaker="sink:crm") == 2


@pytest.mark.parametrize(
    ("status", "retry_after", "expected_delay"),
    [(429, "120", 60.0), (503, "5", 5.0), (429, "soon", 1.0), (500, "30", 1.0)],
)
async def test_retry_after_is_honoured_on_429_and_503_within_bounds(
    fresh_db_url: str, status: int, retry_after: str, expected_delay: float
) -> None:
    """Retry-After on 429/503 sets the next attempt (capped at retry_after_max_seconds);
    unparseable or on other statuses it is ignored in favour of the backoff."""
    clock = ManualClock()
    server = SinkServer(always(status, **{"retry-after": retry_after}), clock)
    async with (
        sink_servers(server),
        delivery_stack(
            fresh_db_url,
            sinks=[sink("crm", server, retry_after_max_seconds=60, breaker_fail_max=100)],
            clock=clock,
        ) as stack,
    ):
        await stack.write([event(1, at=clock.now())])
        await stack.service.dispatcher.run_once()
        due_at = await stack.scalar("SELECT due_at FROM outbox")
        assert due_at == clock.now() + timedelta(seconds=expected_delay)


async def test_breaker_opens_defers_without_burning_attempts_and_a_probe_closes_it(
    fresh_db_url: str,
) -> None:
    """fail_max=3: the third failure opens the breaker; the other rows wait without an
    attempt; after reset_timeout one half-open probe goes out (fails: open again), after the
    next one succeeds the breaker closes and everything is delivered exactly once."""
    clock = ManualClock()
    server = SinkServer(fails_then_recovers(4), clock)
    async with (
        sink_servers(server),
        delivery_stack(
            fresh_db_url,
            sinks=[
                sink(
                    "crm",
                    server,
                    breaker_fail_max=3,
                    breaker_reset_seconds=30,
                    max_attempts=10,
                )
            ],
            clock=clock,
        ) as stack,
    ):
        metric = stack.metric
        events = [event(i, at=clock.now()) for i in range(5)]
        await stack.write(events)

        assert await stack.service.dispatcher.run_once() == 5
        assert len(server.started) == 3
        assert metric("hookline_circuit_breaker_state", breaker="sink:crm") == 2
        assert (
            metric(
                "hookline_circuit_breaker_transitions_total", breaker="sink:crm", to_state="open"
            )
            == 1
        )
        attempts = sorted(r["attempts"] for r in await stack.rows("SELECT * FROM outbox"))
        assert attempts == [0, 0, 1, 1, 1]
        assert metric("hookline_delivery_attempts_total", sink="crm", outcome="breaker_open") == 2

        clock.advance(10)  # retries are due, but the breaker is open: nothing claimed
        assert await stack.service.dispatcher.run_once() == 0
        assert len(server.started) == 3

        clock.advance(20)  # reset_timeout elapsed: one probe, which fails
        assert await stack.service.dispatcher.run_once() == 5
        assert len(server.started) == 4
        assert (
            metric(
                "hookline_circuit_breaker_transitions_total",
                breaker="sink:crm",
                to_state="half-open",
            )
            == 1
        )
        assert (
            metric(
                "hookline_circuit_breaker_transitions_total", breaker="sink:crm", to_state="open"
            )
            == 2
        )
        assert stack.service.breakers["crm"].state == "open"

        clock.advance(30)  # the next probe succeeds: closed, the rest goes through
        await stack.drain()
        assert stack.service.breakers["crm"].state == "closed"
        assert metric("hookline_circuit_breaker_state", breaker="sink:crm") == 0
        assert (
            metric(
                "hookline_circuit_breaker_transitions_total",
                breaker="sink:crm",
                to_state="closed",
            )
            == 1
        )
        delivered = [r.webhook_id for r in server.received[4:]]
        assert sorted(delivered) == sorted(webhook_id("crm", e.dedup_key) for e in events)
        assert await stack.scalar("SELECT count(*) FROM outbox") == 0


async def test_replay_delivers_exactly_once(fresh_db_url: str) -> None:
    """DLQ entries replayed (one by id, the rest in bulk by sink and time range) are
    delivered once each; replaying an id again finds nothing."""
    answers = {"status": 410}
    server = SinkServer(lambda _: Reply(answers["status"]))
    async with (
        sink_servers(server),
        delivery_stack(fresh_db_url, sinks=[sink("crm", server)]) as stack,
    ):
        events = [event(i) for i in range(3)]
        await stack.write(events)
        await stack.drain()
        entries = await stack.service.dlq.list()
        assert len(entries) == 3
        answers["status"] = 200
        first = entries[-1]
        assert await stack.service.dlq.replay(first.id) is True
        assert await stack.service.dlq.replay(first.id) is False
        selection = await stack.service.dlq.select_range(
            "crm", since=first.dead_at - timedelta(minutes=1), until=None
        )
        assert selection.count == 2
        assert await stack.service.dlq.replay_range(selection, chunk=1) == 2
        assert await stack.service.dlq.list() == []
        await stack.drain()
        successes = server.ids()[3:]
        assert sorted(successes) == sorted(webhook_id("crm", e.dedup_key) for e in events)
        assert await stack.scalar("SELECT count(*) FROM outbox") == 0
        assert await stack.scalar("SELECT max(replays) FROM dlq") is None


async def test_two_workers_never_deliver_the_same_event_twice(fresh_db_url: str) -> None:
    """Two dispatchers (separate pools and breakers) drain one outbox concurrently: every
    event is delivered exactly once."""
    server = SinkServer(lambda _: Reply(200, delay=0.002))
    async with sink_servers(server):
        config = sink("crm", server)
        clock = ManualClock()
        async with (
            delivery_stack(
                fresh_db_url, sinks=[config], clock=clock, concurrency=8, batch_size=15
            ) as one,
            delivery_stack(
                fresh_db_url, sinks=[config], clock=clock, concurrency=8, batch_size=15
            ) as two,
        ):
            events = [event(i, at=clock.now()) for i in range(200)]
            await one.write(events)

            async def drain(stack: Any) -> int:
                total = 0
                while claimed := await stack.service.dispatcher.run_once():
                    total += claimed
                return total

            counts = await asyncio.gather(drain(one), drain(two))
            assert sum(counts) == 200
            assert all(counts), counts  # both took part
            assert len(server.received) == 200
            assert len(set(server.ids())) == 200


async def test_a_worker_killed_mid_delivery_leaves_its_lease_to_expire(
    fresh_db_url: str,
) -> None:
    """Worker one dies while its request hangs; its claimed row is invisible to worker two
    until the lease expires, then worker two delivers it, and it is recorded once."""
    server = SinkServer(lambda n: Reply(200, delay=30.0 if n == 0 else 0.0))
    async with sink_servers(server):
        config = sink("crm", server)
        clock = ManualClock()
        async with (
            delivery_stack(fresh_db_url, sinks=[config], clock=clock) as one,
            delivery_stack(fresh_db_url, sinks=[config], clock=clock) as two,
        ):
            item = event(1, at=clock.now())
            await one.write([item])
            doomed = asyncio.create_task(one.service.dispatcher.run_once())
            for _ in range(500):
                if server.started:
                    break
                await asyncio.sleep(0.01)
            assert len(server.started) == 1
            doomed.cancel()
            with pytest.raises(asyncio.CancelledError):
                await doomed

            assert await two.service.dispatcher.run_once() == 0  # still leased
            clock.advance(two.service.dispatcher.lease_seconds + 1)
            assert await two.service.dispatcher.run_once() == 1
            assert [r.webhook_id for r in server.received] == [webhook_id("crm", item.dedup_key)]
            assert await two.scalar("SELECT count(*) FROM outbox") == 0
            assert await two.scalar("SELECT count(*) FROM dlq") == 0


async def test_notify_wakes_an_idle_dispatcher_and_stop_is_graceful(fresh_db_url: str) -> None:
    """With polling slowed to a minute, a committed write still reaches the sink within
    seconds (LISTEN/NOTIFY on the listener's own connection); setting the stop event ends
    the dispatcher loop and the listener promptly."""
    server = SinkServer(healthy)
    async with (
        sink_servers(server),
        delivery_stack(fresh_db_url, sinks=[sink("crm", server)]) as stack,
    ):
        dispatcher = stack.service.dispatcher
        dispatcher.idle_min_seconds = dispatcher.idle_max_seconds = 60.0
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(dispatcher.run(stop)),
            asyncio.create_task(stack.service.listener.run(stop)),
        ]
        await asyncio.sleep(0.5)  # the first (empty) pass, then an idle wait
        await stack.write([event(1)])
        async with asyncio.timeout(10):
            while not server.received:
                await asyncio.sleep(0.02)
        stop.set()
        async with asyncio.timeout(5):
            await asyncio.gather(*tasks)
        assert len(server.received) == 1
