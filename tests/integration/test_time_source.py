"""Where each event's time came from, through a real gateway and PostgreSQL (issue #17): the
adapters' ``time_source`` is stored with the event and returned by ``GET /v1/events`` and
the message timeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hookline_testing import basic_auth_header, samples_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOKEN = "time-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CREDENTIALS = "esp:time-secret"


async def test_time_source_is_stored_and_returned(gateway_factory: Any) -> None:
    """A signed SendGrid batch with one dated and one undated event stores ``event`` and
    ``envelope`` (the signed timestamp header's time); a Postmark delivery without its
    DeliveredAt stores ``received``; /v1/events and /v1/messages return each with its
    occurred_at."""
    spec, key = samples_for("sendgrid").make_source("main")
    sources = [
        {"provider": "sendgrid", "name": "main", "signing_key": spec.signing_key},
        {"provider": "postmark", "name": "main", "basic_auth": CREDENTIALS},
    ]
    async with gateway_factory(sources=sources, admin={"token": TOKEN}) as gw:
        dated, undated = json.loads((FIXTURES / "sendgrid" / "all_events.json").read_bytes())[:2]
        undated.pop("timestamp")
        now = datetime.now(UTC).replace(microsecond=0)
        body = json.dumps([dated, undated]).encode() + b"\r\n"
        request = samples_for("sendgrid").signed_request(spec, key, body, now=now)
        response = await gw.client.post(
            "/webhooks/sendgrid/main", content=request.body, headers=dict(request.headers)
        )
        assert response.status_code == 200, response.text
        record = json.loads((FIXTURES / "postmark" / "delivery.json").read_bytes())
        record.pop("DeliveredAt")
        response = await gw.client.post(
            "/webhooks/postmark/main",
            content=json.dumps(record).encode(),
            headers={
                "content-type": "application/json",
                "authorization": basic_auth_header(CREDENTIALS),
            },
        )
        assert response.status_code == 200, response.text

        listed = await gw.client.get("/v1/events", params={"limit": 10}, headers=AUTH)
        assert listed.status_code == 200, listed.text
        found = {
            (item["provider"], item["esp_event"]): (item["time_source"], item["occurred_at"])
            for item in listed.json()["items"]
        }
        assert found[("sendgrid", "processed")] == ("event", "2023-11-14T22:13:21Z")
        assert found[("sendgrid", undated["event"])] == (
            "envelope",
            now.isoformat().replace("+00:00", "Z"),
        )
        source, occurred_at = found[("postmark", "Delivery")]
        assert source == "received"
        assert datetime.fromisoformat(occurred_at.replace("Z", "+00:00")) >= now

        timeline = await gw.client.get(f"/v1/messages/{record['MessageID']}", headers=AUTH)
        assert timeline.status_code == 200, timeline.text
        assert [e["time_source"] for e in timeline.json()["events"]] == ["received"]
