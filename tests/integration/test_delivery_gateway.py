"""Delivery inside a running gateway: real signed ESP webhooks over HTTP in, signed
deliveries to real local HTTP sinks out, workers in ``hookline serve`` or in a separate
``hookline worker`` process sharing the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from standardwebhooks.webhooks import Webhook

from gateway.delivery import webhook_id
from handlers.base import WebhookRequest
from hookline_testing import samples_for
from tests.integration.delivery_support import SinkServer, always, healthy, sink, sink_servers

SPEC, KEY = samples_for("sendgrid").make_source("main")
SOURCE = {"provider": "sendgrid", "name": "main", "signing_key": SPEC.signing_key}


def signed(body: bytes) -> WebhookRequest:
    return samples_for("sendgrid").signed_request(SPEC, KEY, body, now=datetime.now(UTC))


async def post(gw: Any, body: bytes) -> Any:
    request = signed(body)
    response = await gw.client.post(
        "/webhooks/sendgrid/main", content=request.body, headers=dict(request.headers)
    )
    assert response.status_code == 200, response.text
    return response.json()


async def eventually(check: Callable[[], Any], timeout: float = 15.0) -> None:
    """Poll ``check`` (sync or async, truthy when done) until it holds or time runs out."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def outbox_empty(gw: Any) -> bool:
    conn = await asyncpg.connect(gw.settings.database.url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox")) == 0
    finally:
        await conn.close()


async def dedup_keys(gw: Any) -> list[str]:
    conn = await asyncpg.connect(gw.settings.database.url)
    try:
        return [r[0] for r in await conn.fetch("SELECT dedup_key FROM events ORDER BY id")]
    finally:
        await conn.close()


async def test_redelivered_esp_webhook_is_delivered_to_the_sink_once(
    gateway_factory: Any,
) -> None:
    """SendGrid sends the same batch three times: the sink gets each event exactly once,
    signed so that the standardwebhooks library accepts it, with a traceparent."""
    server = SinkServer(healthy)
    async with sink_servers(server):
        config = sink("crm", server)
        async with gateway_factory(sources=[SOURCE], sinks=[config]) as gw:
            body = samples_for("sendgrid").example_body(4, seed=11)
            assert await post(gw, body) == {"accepted": 4, "duplicates": 0}
            await eventually(lambda: len(server.received) >= 4)
            for _ in range(2):
                assert await post(gw, body) == {"accepted": 4, "duplicates": 4}
            await eventually(lambda: outbox_empty(gw))
            await asyncio.sleep(0.5)  # give a wrong second delivery the chance to happen
            keys = await dedup_keys(gw)
            assert sorted(server.ids()) == sorted(webhook_id("crm", key) for key in keys)
            verifier = Webhook(config["secret"])
            for record in server.received:
                payload = verifier.verify(record.body, record.headers)
                assert payload["type"] == "email.delivered"
                assert payload["data"]["provider"] == "sendgrid"
                assert record.headers["traceparent"].startswith("00-")
            assert gw.metric("hookline_delivery_attempts_total", sink="crm", outcome="success") == 4


async def test_bounce_and_complaint_webhooks_feed_the_suppression_list(
    gateway_factory: Any,
) -> None:
    """A hard bounce and a spam report arriving as SendGrid webhooks end up on the
    suppression list, visible through the admin API."""
    async with gateway_factory(sources=[SOURCE], admin={"token": "t"}) as gw:
        await post(gw, samples_for("sendgrid").example_body(1, seed=21, event="bounce"))
        await post(gw, samples_for("sendgrid").example_body(1, seed=22, event="spamreport"))
        headers = {"Authorization": "Bearer t"}

        async def listed() -> bool:
            response = await gw.client.get("/v1/suppressions", headers=headers)
            return len(response.json()["items"]) == 2

        await eventually(listed)
        bounce = await gw.client.get("/v1/suppressions/USER21-0@example.com", headers=headers)
        assert bounce.status_code == 200
        assert bounce.json()["reason"] == "hard_bounce"
        complaint = await gw.client.get("/v1/suppressions/user22-0@example.com", headers=headers)
        assert complaint.json()["reason"] == "complaint"
        assert gw.metric("hookline_suppressions_added_total", reason="hard_bounce") == 1
        assert gw.metric("hookline_suppressions_added_total", reason="complaint") == 1


async def test_a_separate_worker_process_delivers_what_the_gateway_stored(
    gateway_factory: Any,
) -> None:
    """``serve --no-workers`` stores and enqueues; a ``worker`` role on the same database
    delivers. The gateway exports no delivery gauges of its own."""
    server = SinkServer(healthy)
    async with sink_servers(server):
        sinks = [sink("crm", server)]
        async with (
            gateway_factory(sources=[SOURCE], sinks=sinks, server={"workers": False}) as gw,
            gateway_factory(role="worker", sources=[SOURCE], sinks=sinks) as worker,
        ):
            await post(gw, samples_for("sendgrid").example_body(3, seed=31))
            await eventually(lambda: len(server.received) == 3)
            assert (
                worker.metric("hookline_delivery_attempts_total", sink="crm", outcome="success")
                == 3
            )
            assert gw.metric("hookline_delivery_attempts_total", sink="crm", outcome="success") == 0
            assert (await worker.client.get("/healthz")).status_code == 200


async def test_dead_letters_show_in_the_dlq_gauge_and_metrics_endpoint(
    gateway_factory: Any,
) -> None:
    """A sink answering 410: the deliveries are dead-lettered at once, and the DLQ gauge
    and counters on /metrics say so."""
    server = SinkServer(always(410))
    async with (
        sink_servers(server),
        gateway_factory(sources=[SOURCE], sinks=[sink("crm", server)]) as gw,
    ):
        await post(gw, samples_for("sendgrid").example_body(2, seed=41))
        await eventually(lambda: gw.metric("hookline_dlq_events", sink="crm") == 2)
        assert gw.metric("hookline_dlq_added_total", sink="crm") == 2
        assert gw.metric("hookline_delivery_retry_queue_events", sink="crm") == 0
        text = (await gw.client.get("/metrics")).text
        assert 'hookline_dlq_events{sink="crm"} 2.0' in text
        assert (
            'hookline_delivery_attempts_total{outcome="permanent_failure",sink="crm"} 2.0' in text
        )
        assert 'hookline_circuit_breaker_state{breaker="sink:crm"} 0.0' in text
