"""SendGrid Inbound Parse pointed at the Event Webhook URL, through a real ``hookline serve``
(issue #17): the unsigned multipart post of a received email is answered 200 so SendGrid
stops retrying it, stores nothing, is counted as an ``inbound_message`` control message and
logged once at info without the addresses it carries; any other multipart body is 415."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from hookline_testing import samples_for
from tests.integration._gateway_process import clean_environment, run_gateway

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sendgrid"
SPEC, _KEY = samples_for("sendgrid").make_source("main")
MULTIPART = {"content-type": "multipart/form-data; boundary=xYzZY"}


def metric(scrape: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def test_inbound_parse_is_acknowledged_counted_logged_and_never_stored(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """The documented Inbound Parse post gets 200 with nothing accepted; a multipart body
    that is not one gets 415; no event, outbox row or suppression exists afterwards; the
    control counter and the webhook outcome say ``inbound_message`` / ``control`` once; one
    info line logs it, and no full address from the email reaches the log."""
    config = {
        "database": {"url": fresh_db_url, "pool_min_size": 1, "pool_max_size": 3},
        "storage": {"data_dir": str(tmp_path / "data")},
        "logging": {"format": "json", "level": "info"},
        "sources": [{"provider": "sendgrid", "name": "main", "signing_key": SPEC.signing_key}],
    }
    body = (FIXTURES / "inbound_parse.multipart").read_bytes()
    async with (
        run_gateway(config, tmp_path, clean_environment()) as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=30.0) as client,
    ):
        response = await client.post("/webhooks/sendgrid/main", content=body, headers=MULTIPART)
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 0, "duplicates": 0}

        other = b'--xYzZY\r\nContent-Disposition: form-data; name="file"\r\n\r\nx\r\n--xYzZY--\r\n'
        refused = await client.post("/webhooks/sendgrid/main", content=other, headers=MULTIPART)
        assert refused.status_code == 415, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")

        scrape = (await client.get("/metrics")).text
        assert (
            metric(
                scrape,
                "hookline_control_messages_total",
                provider="sendgrid",
                kind="inbound_message",
            )
            == 1
        )
        requests = "hookline_webhook_requests_total"
        assert metric(scrape, requests, provider="sendgrid", outcome="control") == 1
        assert metric(scrape, requests, provider="sendgrid", outcome="unsupported_media_type") == 1

    conn = await asyncpg.connect(fresh_db_url)
    try:
        for table in ("events", "outbox", "suppressions", "quarantine", "control_messages"):
            assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0, table
    finally:
        await conn.close()
    logged = [
        line for line in gateway.json_lines() if line.get("event") == "webhook.control_message"
    ]
    assert len(logged) == 1
    assert logged[0]["level"] == "info"
    assert logged[0]["kind"] == "inbound_message"
    assert logged[0]["provider"] == "sendgrid"
    assert "example@example.com" not in gateway.stderr()
