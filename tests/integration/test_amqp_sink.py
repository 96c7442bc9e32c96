"""AMQP sinks against a real RabbitMQ: what a consumer receives, confirmed delivery through
the same retry policy, breaker and DLQ as HTTP sinks, a broker restart mid-stream, an
unroutable routing key, and a signed ESP webhook travelling through a running gateway into
a queue without the broker password ever being printed.

One broker serves the module (it takes seconds to start); each test publishes to its own
exchange and reads from its own durable queue, and a test that stops the broker starts it
again before it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import msgspec
import pytest
from aio_pika.abc import AbstractIncomingMessage

from gateway.clock import ManualClock
from gateway.delivery import webhook_id
from handlers.events import EventType
from hookline_testing import samples_for
from tests.integration._gateway_process import ROOT, clean_environment, run_gateway
from tests.integration._rabbitmq import RabbitBroker
from tests.integration.delivery_support import delivery_stack, event

TRACEPARENT = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


@pytest.fixture(scope="module")
def broker() -> Iterator[RabbitBroker]:
    node = RabbitBroker()
    try:
        node.start()
        yield node
    finally:
        node.close()


@contextlib.asynccontextmanager
async def restarted_at_exit(broker: RabbitBroker) -> AsyncIterator[None]:
    """Whatever the test does to the broker, it is running again afterwards."""
    try:
        yield
    finally:
        if not broker_running(broker):
            await asyncio.to_thread(broker.start)


def broker_running(broker: RabbitBroker) -> bool:
    try:
        socket.create_connection(("127.0.0.1", broker.port), timeout=0.5).close()
    except OSError:
        return False
    return True


async def bind_queue(broker: RabbitBroker, exchange: str, binding: str) -> str:
    """Declare ``exchange`` (durable topic, as the sink does) and a durable queue bound to it
    with ``binding``; return the queue's name."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_exchange(
            exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(name, durable=True)
        await queue.bind(declared, binding)
    return name


async def take_all(broker: RabbitBroker, queue_name: str) -> list[AbstractIncomingMessage]:
    """Every message now in the queue, acknowledged."""
    taken: list[AbstractIncomingMessage] = []
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name)
        while (message := await queue.get(fail=False, timeout=5)) is not None:
            await message.ack()
            taken.append(message)
    return taken


def amqp_sink(broker: RabbitBroker, exchange: str, **overrides: Any) -> dict[str, Any]:
    """A ``[[sinks]]`` entry: the password apart from the URL, as operators configure it."""
    return {
        "name": "rabbit",
        "kind": "amqp",
        "url": broker.url_without_password,
        "password": broker.password,
        "exchange": exchange,
        "timeout_seconds": 5.0,
        **overrides,
    }


def new_exchange() -> str:
    return f"hookline-test-{uuid.uuid4().hex[:8]}"


async def test_events_reach_a_bound_queue_with_the_documented_properties(
    fresh_db_url: str, broker: RabbitBroker
) -> None:
    """A bounce is published persistent with message_id = webhook_id(sink, dedup_key),
    content type, timestamp, type, provider/source headers and a traceparent, under the
    routing key ``hookline.{provider}.{event_type}``, its body the envelope HTTP sinks get;
    an event type outside the sink's filter is not published at all."""
    exchange = new_exchange()
    queue = await bind_queue(broker, exchange, "hookline.#")
    clock = ManualClock()
    async with delivery_stack(
        fresh_db_url,
        sinks=[amqp_sink(broker, exchange, event_types=["bounced"])],
        clock=clock,
    ) as stack:
        bounce = event(1, event_type=EventType.BOUNCED, at=clock.now())
        opened = event(2, event_type=EventType.OPENED, at=clock.now())
        await stack.write([bounce, opened])
        await stack.drain()

        (message,) = await take_all(broker, queue)
        assert message.routing_key == "hookline.sendgrid.bounced"
        assert message.exchange == exchange
        assert message.message_id == webhook_id("rabbit", bounce.dedup_key)
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.content_type == "application/json"
        assert message.type == "email.bounced"
        assert message.app_id == "hookline"
        assert message.timestamp is not None
        assert abs((message.timestamp - clock.now()).total_seconds()) < 1
        headers = message.headers
        assert headers["hookline-provider"] == "sendgrid"
        assert headers["hookline-source"] == "main"
        assert isinstance(headers["traceparent"], str)
        assert TRACEPARENT.match(headers["traceparent"])
        body = msgspec.json.decode(message.body)
        assert body["type"] == "email.bounced"
        assert body["data"]["dedup_key"] == bounce.dedup_key
        assert body["data"]["recipient"] == bounce.recipient
        assert stack.metric("hookline_delivery_attempts_total", sink="rabbit", outcome="success")
        assert await stack.scalar("SELECT count(*) FROM outbox") == 0


async def test_routing_key_template_uses_source_provider_and_type(
    fresh_db_url: str, broker: RabbitBroker
) -> None:
    """A custom template routes each event by its own source, provider and event type."""
    exchange = new_exchange()
    queue = await bind_queue(broker, exchange, "main.*.delivered")
    async with delivery_stack(
        fresh_db_url,
        sinks=[amqp_sink(broker, exchange, routing_key="{source}.{provider}.{event_type}")],
    ) as stack:
        sent = [event(1, provider="mailgun"), event(2, provider="postmark")]
        await stack.write(sent)
        await stack.drain()
        keys = sorted(m.routing_key or "" for m in await take_all(broker, queue))
        assert keys == ["main.mailgun.delivered", "main.postmark.delivered"]


async def test_an_unroutable_routing_key_is_dead_lettered_with_the_reason(
    fresh_db_url: str, broker: RabbitBroker
) -> None:
    """No queue is bound for the routing key: the broker returns the mandatory message, the
    row goes straight to the DLQ as permanent after one attempt with the broker's reason and
    the routing key, and the breaker stays closed (it is configuration, not the broker)."""
    exchange = new_exchange()
    await bind_queue(broker, exchange, "elsewhere.#")
    clock = ManualClock()
    async with delivery_stack(
        fresh_db_url, sinks=[amqp_sink(broker, exchange, breaker_fail_max=1)], clock=clock
    ) as stack:
        item = event(1, at=clock.now())
        await stack.write([item])
        await stack.drain()
        (entry,) = await stack.service.dlq.list()
        assert (entry.sink, entry.reason) == ("rabbit", "permanent")
        assert entry.dedup_key == item.dedup_key
        assert entry.attempts == 1
        assert "unroutable: 312 NO_ROUTE" in entry.last_error
        assert "routing key 'hookline.sendgrid.delivered'" in entry.last_error
        assert stack.service.breakers["rabbit"].state == "closed"
        assert stack.metric("hookline_dlq_added_total", sink="rabbit") == 1


async def test_broker_restart_mid_stream_loses_nothing_and_the_breaker_opens_and_closes(
    fresh_db_url: str, broker: RabbitBroker
) -> None:
    """Four events confirmed, then the broker stops: the next attempts fail (retries, no
    attempt burned once the breaker is open), the breaker opens; the broker starts again,
    the half-open probe reconnects and succeeds, the breaker closes and every event, those
    confirmed before the stop included, is in the durable queue."""
    exchange = new_exchange()
    queue = await bind_queue(broker, exchange, "hookline.#")
    clock = ManualClock()
    sink = amqp_sink(
        broker, exchange, breaker_fail_max=2, breaker_reset_seconds=30, max_attempts=10
    )
    async with (
        restarted_at_exit(broker),
        delivery_stack(fresh_db_url, sinks=[sink], clock=clock) as stack,
    ):
        metric = stack.metric
        before = [event(i, at=clock.now()) for i in range(4)]
        await stack.write(before)
        await stack.drain()
        assert metric("hookline_delivery_attempts_total", sink="rabbit", outcome="success") == 4

        await asyncio.to_thread(broker.stop)
        during = [event(i, at=clock.now()) for i in range(4, 8)]
        await stack.write(during)
        assert await stack.service.dispatcher.run_once() == 4
        assert stack.service.breakers["rabbit"].state == "open"
        assert metric("hookline_circuit_breaker_state", breaker="sink:rabbit") == 2
        attempts = sorted(r["attempts"] for r in await stack.rows("SELECT * FROM outbox"))
        assert attempts == [0, 0, 1, 1]
        errors = [r["last_error"] for r in await stack.rows("SELECT * FROM outbox")]
        assert all(e is None or e.startswith("connection error") for e in errors)
        assert metric("hookline_delivery_attempts_total", sink="rabbit", outcome="retry") == 2
        assert (
            metric("hookline_delivery_attempts_total", sink="rabbit", outcome="breaker_open") == 2
        )

        await asyncio.to_thread(broker.start)
        clock.advance(30)
        await stack.drain()
        assert stack.service.breakers["rabbit"].state == "closed"
        assert (
            metric(
                "hookline_circuit_breaker_transitions_total",
                breaker="sink:rabbit",
                to_state="closed",
            )
            == 1
        )
        assert await stack.scalar("SELECT count(*) FROM outbox") == 0
        assert await stack.scalar("SELECT count(*) FROM dlq") == 0

        received = {m.message_id for m in await take_all(broker, queue)}
        assert received == {webhook_id("rabbit", e.dedup_key) for e in before + during}


async def test_a_broker_that_stops_answering_times_out_opens_the_breaker_and_recovers(
    fresh_db_url: str, broker: RabbitBroker
) -> None:
    """The broker is frozen (connections open, no confirms): attempts time out and count
    against the breaker, which opens; once the broker answers again the probe goes through
    and every event is in the queue (a timed-out publish may arrive twice, with the same
    message_id)."""
    exchange = new_exchange()
    queue = await bind_queue(broker, exchange, "hookline.#")
    clock = ManualClock()
    sink = amqp_sink(
        broker,
        exchange,
        timeout_seconds=1.0,
        breaker_fail_max=2,
        breaker_reset_seconds=30,
        max_attempts=10,
    )
    async with (
        restarted_at_exit(broker),
        delivery_stack(fresh_db_url, sinks=[sink], clock=clock) as stack,
    ):
        before = [event(i, at=clock.now()) for i in range(2)]
        await stack.write(before)
        await stack.drain()
        during = [event(i, at=clock.now()) for i in range(2, 5)]
        await stack.write(during)
        broker.pause()
        try:
            assert await stack.service.dispatcher.run_once() == 3
        finally:
            broker.resume()
        assert stack.service.breakers["rabbit"].state == "open"
        errors = sorted(
            r["last_error"] or "" for r in await stack.rows("SELECT last_error FROM outbox")
        )
        assert errors == ["", "timeout after 1s", "timeout after 1s"]

        clock.advance(30)
        await stack.drain()
        assert stack.service.breakers["rabbit"].state == "closed"
        assert await stack.scalar("SELECT count(*) FROM outbox") == 0
        received = {m.message_id for m in await take_all(broker, queue)}
        assert received == {webhook_id("rabbit", e.dedup_key) for e in before + during}


async def test_a_broker_down_past_max_attempts_dead_letters_and_replay_delivers_it(
    fresh_db_url: str, broker: RabbitBroker
) -> None:
    """With the broker down, attempts at 0 and 1 s fail with a connection error and the
    delivery lands in the DLQ (exhausted); once the broker is back, replaying the entry
    publishes it once, with the same message_id."""
    exchange = new_exchange()
    queue = await bind_queue(broker, exchange, "hookline.#")
    clock = ManualClock()
    sink = amqp_sink(broker, exchange, max_attempts=2, breaker_fail_max=100)
    async with (
        restarted_at_exit(broker),
        delivery_stack(fresh_db_url, sinks=[sink], clock=clock) as stack,
    ):
        await asyncio.to_thread(broker.stop)
        item = event(1, at=clock.now())
        await stack.write([item])
        assert await stack.service.dispatcher.run_once() == 1
        clock.advance(1)
        assert await stack.service.dispatcher.run_once() == 1
        (entry,) = await stack.service.dlq.list()
        assert (entry.reason, entry.attempts) == ("exhausted", 2)
        assert entry.last_error.startswith("connection error")
        assert broker.password not in entry.last_error
        assert entry.webhook_id == webhook_id("rabbit", item.dedup_key)

        await asyncio.to_thread(broker.start)
        assert await stack.service.dlq.replay(entry.id) is True
        await stack.drain()
        assert await stack.service.dlq.list() == []
        messages = await take_all(broker, queue)
        assert [m.message_id for m in messages] == [entry.webhook_id]


SPEC, KEY = samples_for("sendgrid").make_source("main")
PASSWORD_VARIABLE = "HOOKLINE_TEST_RABBIT_PASSWORD"


async def test_a_signed_webhook_reaches_rabbitmq_through_a_running_gateway_without_leaking_the_password(  # noqa: E501
    fresh_db_url: str, broker: RabbitBroker, tmp_path: Path
) -> None:
    """``hookline serve`` with an AMQP sink whose password comes from ``password_env``: a
    signed SendGrid batch is acknowledged and every event arrives in the bound queue; the
    gateway's debug logs and ``hookline check-config`` name the broker but never print the
    password."""
    exchange = new_exchange()
    queue = await bind_queue(broker, exchange, "hookline.sendgrid.*")
    sink = amqp_sink(broker, exchange)
    del sink["password"]
    sink["password_env"] = PASSWORD_VARIABLE
    config = {
        "database": {"url": fresh_db_url, "pool_min_size": 1, "pool_max_size": 4},
        "storage": {"data_dir": str(tmp_path / "data")},
        "logging": {"format": "json", "level": "debug"},
        "sources": [{"provider": "sendgrid", "name": "main", "signing_key": SPEC.signing_key}],
        "sinks": [sink],
    }
    env = clean_environment(**{PASSWORD_VARIABLE: broker.password})
    body = samples_for("sendgrid").example_body(3, seed=23)
    async with run_gateway(config, tmp_path / "gw", env) as gw:
        request = samples_for("sendgrid").signed_request(SPEC, KEY, body, now=datetime.now(UTC))
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as client:
            response = await client.post(
                "/webhooks/sendgrid/main", content=request.body, headers=dict(request.headers)
            )
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 3, "duplicates": 0}
        messages: list[AbstractIncomingMessage] = []
        deadline = asyncio.get_running_loop().time() + 30
        while len(messages) < 3 and asyncio.get_running_loop().time() < deadline:
            messages += await take_all(broker, queue)
            await asyncio.sleep(0.2)
    assert len(messages) == 3
    assert {msgspec.json.decode(m.body)["data"]["provider"] for m in messages} == {"sendgrid"}
    assert len({m.message_id for m in messages}) == 3

    logs = gw.stderr()
    assert broker.password not in logs
    assert "delivery.amqp_connected" in logs
    # the broker is named (its user@host part is masked like any address by the log policy)
    assert f"127.0.0.1:{broker.port}" in logs

    checked = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check-config", "--config", str(gw.config_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    # the sink's URL carries no password here (password_env); its userinfo is hidden too
    assert f"sink: rabbit (amqp) -> amqp://[redacted]@127.0.0.1:{broker.port}/" in checked.stdout
    assert broker.password not in checked.stdout + checked.stderr
