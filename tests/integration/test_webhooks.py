"""The webhook endpoint end to end: real HTTP, real PostgreSQL, real signatures."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest

from handlers import sendgrid
from handlers.base import SourceSpec, WebhookRequest
from hookline_testing import samples_for

SENDGRID_SPEC, SENDGRID_KEY = samples_for("sendgrid").make_source("main")
MAILGUN_SPEC, MAILGUN_KEY = samples_for("mailgun").make_source("main")


def source_config(spec: SourceSpec, **extra: Any) -> dict[str, Any]:
    return {"provider": spec.provider, "name": spec.name, "signing_key": spec.signing_key, **extra}


SOURCES = [source_config(SENDGRID_SPEC), source_config(MAILGUN_SPEC)]


async def post(gw: Any, request: WebhookRequest, path: str) -> Any:
    return await gw.client.post(path, content=request.body, headers=dict(request.headers))


async def count_rows(gw: Any, table: str = "events") -> int:
    conn = await asyncpg.connect(gw.settings.database.url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


def now() -> datetime:
    return datetime.now(UTC)


async def test_sendgrid_batch_is_stored_and_acknowledged(gateway_factory: Any) -> None:
    """A signed SendGrid batch answers 200 with the count, after the rows are committed."""
    async with gateway_factory(sources=SOURCES) as gw:
        body = samples_for("sendgrid").example_body(5, seed=1)
        response = await post(
            gw,
            samples_for("sendgrid").signed_request(SENDGRID_SPEC, SENDGRID_KEY, body, now=now()),
            "/webhooks/sendgrid/main",
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 5, "duplicates": 0}
        assert await count_rows(gw) == 5
        assert (
            gw.metric("hookline_events_received_total", provider="sendgrid", event_type="delivered")
            == 5
        )
        assert (
            gw.metric("hookline_webhook_requests_total", provider="sendgrid", outcome="accepted")
            == 1
        )


async def test_redelivered_batch_stores_nothing_new(gateway_factory: Any) -> None:
    """The same batch twice: the second answers 200 with duplicates and adds no row."""
    async with gateway_factory(sources=SOURCES) as gw:
        body = samples_for("sendgrid").example_body(3, seed=2)
        for _ in range(2):
            request = samples_for("sendgrid").signed_request(
                SENDGRID_SPEC, SENDGRID_KEY, body, now=now()
            )
            response = await post(gw, request, "/webhooks/sendgrid/main")
            assert response.status_code == 200
        assert response.json() == {"accepted": 3, "duplicates": 3}
        assert await count_rows(gw) == 3
        assert (
            gw.metric("hookline_events_received_total", provider="sendgrid", event_type="delivered")
            == 3
        )
        assert gw.metric("hookline_events_duplicate_total", provider="sendgrid") == 3


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("flip_body", "invalid"),
        ("drop_signature", "missing"),
        ("stale", "stale"),
    ],
)
async def test_sendgrid_authentication_failures_are_401(
    gateway_factory: Any, tamper: str, reason: str
) -> None:
    """Bad, missing or stale signatures answer 401, are counted by reason, store nothing."""
    async with gateway_factory(sources=SOURCES) as gw:
        body = samples_for("sendgrid").example_body(1, seed=3)
        when = now() - timedelta(days=2) if tamper == "stale" else now()
        request = samples_for("sendgrid").signed_request(
            SENDGRID_SPEC, SENDGRID_KEY, body, now=when
        )
        headers = dict(request.headers)
        content = request.body
        if tamper == "flip_body":
            content = content.replace(b"user3", b"user4")
        if tamper == "drop_signature":
            headers.pop(sendgrid.SIGNATURE_HEADER)
        response = await gw.client.post("/webhooks/sendgrid/main", content=content, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "key" not in response.text.lower()
        assert (
            gw.metric("hookline_signature_failures_total", provider="sendgrid", reason=reason) == 1
        )
        assert await count_rows(gw) == 0


async def test_malformed_body_is_400_naming_the_problem(gateway_factory: Any) -> None:
    """A correctly signed body that is not SendGrid's shape answers 400 with a reason."""
    async with gateway_factory(sources=SOURCES) as gw:
        body = b'{"not": "an array"}'
        request = samples_for("sendgrid").signed_request(
            SENDGRID_SPEC, SENDGRID_KEY, body, now=now()
        )
        response = await post(gw, request, "/webhooks/sendgrid/main")
        assert response.status_code == 400
        problem = response.json()
        assert problem["status"] == 400 and problem["detail"]
        assert await count_rows(gw) == 0


async def test_unknown_provider_or_source_is_404(gateway_factory: Any) -> None:
    async with gateway_factory(sources=SOURCES) as gw:
        for path in ("/webhooks/sendgrid/nope", "/webhooks/nosuchesp/main"):
            response = await gw.client.post(
                path, content=b"[]", headers={"content-type": "application/json"}
            )
            assert response.status_code == 404, path
            assert response.headers["content-type"].startswith("application/problem+json")


async def test_paths_and_methods_outside_the_contract(gateway_factory: Any) -> None:
    """Malformed webhook paths are 404 and other methods 405 (with Allow), as problem+json;
    HEAD answers 200 for a known source and 404 otherwise (Mandrill's URL check)."""
    async with gateway_factory(sources=SOURCES) as gw:
        for path in ("/webhooks", "/webhooks/sendgrid", "/webhooks/sendgrid/main/extra"):
            response = await gw.client.post(path, content=b"[]")
            assert response.status_code == 404, path
            assert response.headers["content-type"].startswith("application/problem+json")
        response = await gw.client.get("/webhooks/sendgrid/main")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST, HEAD"
        assert response.json()["status"] == 405
        assert (await gw.client.head("/webhooks/sendgrid/main")).status_code == 200
        assert (await gw.client.head("/webhooks/sendgrid/nope")).status_code == 404
        assert await count_rows(gw) == 0


async def test_chunked_body_over_the_limit_is_413(gateway_factory: Any) -> None:
    """A body without Content-Length is counted as it streams in and refused past the limit."""
    async with gateway_factory(sources=SOURCES, ingest={"max_body_bytes": 2048}) as gw:
        body = samples_for("sendgrid").example_body(40, seed=6)
        request = samples_for("sendgrid").signed_request(
            SENDGRID_SPEC, SENDGRID_KEY, body, now=now()
        )

        async def chunks() -> Any:
            for start in range(0, len(body), 500):
                yield body[start : start + 500]

        response = await gw.client.post(
            "/webhooks/sendgrid/main", content=chunks(), headers=dict(request.headers)
        )
        assert response.status_code == 413
        assert await count_rows(gw) == 0


async def test_client_gone_mid_body_is_not_processed(gateway_factory: Any) -> None:
    """A client that closes its connection before the last byte of its body gets nothing
    processed: no event stored, the request counted as ``disconnected``."""
    async with gateway_factory(sources=SOURCES) as gw:
        body = samples_for("sendgrid").example_body(3, seed=8)
        request = samples_for("sendgrid").signed_request(
            SENDGRID_SPEC, SENDGRID_KEY, body, now=now()
        )
        head = "".join(f"{name}: {value}\r\n" for name, value in request.headers.items())
        port = int(gw.url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST /webhooks/sendgrid/main HTTP/1.1\r\nHost: x\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        await writer.drain()
        await asyncio.sleep(0.2)  # the gateway has the headers and half the body
        writer.close()
        await writer.wait_closed()
        assert await reader.read() == b"", "nobody is left to answer"
        for _ in range(100):
            counted = gw.metric(
                "hookline_webhook_requests_total", provider="sendgrid", outcome="disconnected"
            )
            if counted:
                break
            await asyncio.sleep(0.05)
        assert counted == 1
        assert await count_rows(gw) == 0


async def test_body_over_the_limit_is_413(gateway_factory: Any) -> None:
    async with gateway_factory(sources=SOURCES, ingest={"max_body_bytes": 2048}) as gw:
        body = samples_for("sendgrid").example_body(40, seed=4)
        assert len(body) > 2048
        request = samples_for("sendgrid").signed_request(
            SENDGRID_SPEC, SENDGRID_KEY, body, now=now()
        )
        response = await post(gw, request, "/webhooks/sendgrid/main")
        assert response.status_code == 413
        assert (
            gw.metric("hookline_webhook_requests_total", provider="sendgrid", outcome="too_large")
            == 1
        )
        assert await count_rows(gw) == 0


async def test_wrong_content_type_is_415(gateway_factory: Any) -> None:
    async with gateway_factory(sources=SOURCES) as gw:
        body = samples_for("sendgrid").example_body(1, seed=5)
        request = samples_for("sendgrid").signed_request(
            SENDGRID_SPEC, SENDGRID_KEY, body, now=now()
        )
        headers = {**request.headers, "content-type": "text/plain"}
        response = await gw.client.post(
            "/webhooks/sendgrid/main", content=request.body, headers=headers
        )
        assert response.status_code == 415


async def test_mailgun_redelivery_is_a_duplicate_but_token_reuse_is_a_forgery(
    gateway_factory: Any,
) -> None:
    """Mailgun's signature does not cover the event: the same request again is a duplicate
    (200), the same token with another event is a replayed signature (401)."""
    async with gateway_factory(sources=SOURCES) as gw:
        body = samples_for("mailgun").example_body(seed=6)
        request = samples_for("mailgun").signed_request(MAILGUN_SPEC, MAILGUN_KEY, body, now=now())
        first = await post(gw, request, "/webhooks/mailgun/main")
        again = await post(gw, request, "/webhooks/mailgun/main")
        assert first.status_code == 200 and first.json() == {"accepted": 1, "duplicates": 0}
        assert again.status_code == 200 and again.json() == {"accepted": 1, "duplicates": 1}

        forged = msgspec.json.decode(request.body)
        forged["event-data"]["recipient"] = "victim@example.com"
        forged["event-data"]["id"] = "evt-forged"
        response = await gw.client.post(
            "/webhooks/mailgun/main",
            content=msgspec.json.encode(forged),
            headers=dict(request.headers),
        )
        assert response.status_code == 401
        assert (
            gw.metric("hookline_signature_failures_total", provider="mailgun", reason="replayed")
            == 1
        )
        assert await count_rows(gw) == 1


async def test_rate_limited_source_answers_429_with_retry_after(gateway_factory: Any) -> None:
    sources = [source_config(SENDGRID_SPEC, rate_limit_per_second=0.01, rate_limit_burst=1)]
    async with gateway_factory(sources=sources) as gw:
        statuses = []
        for seed in range(3):
            body = samples_for("sendgrid").example_body(1, seed=100 + seed)
            request = samples_for("sendgrid").signed_request(
                SENDGRID_SPEC, SENDGRID_KEY, body, now=now()
            )
            response = await post(gw, request, "/webhooks/sendgrid/main")
            statuses.append(response.status_code)
        assert statuses[0] == 200
        assert statuses[1:] == [429, 429]
        assert int(response.headers["retry-after"]) >= 1


async def test_health_readiness_and_metrics_exposition(gateway_factory: Any) -> None:
    """/healthz and /readyz answer 200; /metrics passes `promtool check metrics` and has the
    core series pre-initialised for every provider."""
    async with gateway_factory(sources=SOURCES) as gw:
        assert (await gw.client.get("/healthz")).status_code == 200
        ready = await gw.client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["database"] == "ok"
        exposition = (await gw.client.get("/metrics")).text
        for name in (
            "hookline_webhook_requests_total",
            "hookline_webhook_request_duration_seconds_bucket",
            "hookline_events_received_total",
            "hookline_events_duplicate_total",
            "hookline_signature_failures_total",
        ):
            assert f"{name}{{" in exposition, name
        assert (
            'hookline_events_received_total{event_type="bounced",provider="sendgrid",source="main"}'
            " 0.0" in exposition
        )
        with tempfile.NamedTemporaryFile("w", suffix=".prom") as handle:
            handle.write(exposition)
            handle.flush()
            result = subprocess.run(
                f"promtool check metrics < {handle.name}",
                shell=True,
                capture_output=True,
                text=True,
                check=False,
            )
        assert result.returncode == 0, result.stdout + result.stderr
        openmetrics = await gw.client.get(
            "/metrics", headers={"accept": "application/openmetrics-text"}
        )
        assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
        assert openmetrics.text.rstrip().endswith("# EOF")
