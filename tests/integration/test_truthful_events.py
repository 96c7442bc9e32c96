"""Real-world ESP traffic through a running gateway (issue #17): what is not a bounce never
suppresses, quarantines or counts as one; what is not a tracking event is never stored."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from handlers import mailgun
from hookline_testing import basic_auth_header, samples_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOKEN = "truth-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CREDENTIALS = "esp:truth-secret"


def unsigned_source(provider: str) -> dict[str, Any]:
    return {"provider": provider, "name": "main", "basic_auth": CREDENTIALS}


async def post_json(gw: Any, provider: str, body: bytes) -> Any:
    return await gw.client.post(
        f"/webhooks/{provider}/main",
        content=body,
        headers={
            "content-type": "application/json",
            "authorization": basic_auth_header(CREDENTIALS),
        },
    )


async def rows(gw: Any, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(gw.settings.database.url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def eventually(check: Callable[[], Any], timeout: float = 15.0) -> None:
    """Poll ``check`` (async, truthy when done) until it holds or time runs out."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def outbox_empty(gw: Any) -> bool:
    return (await rows(gw, "SELECT count(*) AS n FROM outbox"))[0]["n"] == 0


def sparkpost_bounce(event_id: str, bounce_class: str, recipient: str) -> dict[str, Any]:
    """SparkPost's documented bounce sample with another class, event id and recipient."""
    (item,) = json.loads((FIXTURES / "sparkpost" / "bounce_auto_reply.json").read_bytes())
    event = item["msys"]["message_event"]
    event.update(
        event_id=event_id, bounce_class=bounce_class, rcpt_to=recipient, raw_rcpt_to=recipient
    )
    return item


async def test_auto_replies_never_suppress_and_are_no_bounces_in_stats(
    gateway_factory: Any,
) -> None:
    """SparkPost classes 60/100 and Postmark AutoResponder are stored as auto_replied: with a
    soft-bounce threshold of 1 they quarantine nothing, while a real soft bounce (class 21)
    in the same run does; the stats count them apart and the bounce rate ignores them."""
    sources = [unsigned_source("sparkpost"), unsigned_source("postmark")]
    # the documented samples are from 2016: count soft bounces over a window that long
    suppressions = {"soft_bounce_threshold": 1, "soft_bounce_window_seconds": 20 * 365 * 86400}
    async with gateway_factory(
        sources=sources, suppressions=suppressions, admin={"token": TOKEN}
    ) as gw:
        batch = [
            sparkpost_bounce("9001", "60", "vacation@example.org"),
            sparkpost_bounce("9002", "100", "challenge@example.org"),
            sparkpost_bounce("9003", "21", "soft@example.org"),
        ]
        response = await post_json(gw, "sparkpost", json.dumps(batch).encode())
        assert response.status_code == 200, response.text
        auto_responder = (FIXTURES / "postmark" / "bounce_auto_responder.json").read_bytes()
        response = await post_json(gw, "postmark", auto_responder)
        assert response.status_code == 200, response.text

        stored = await rows(gw, "SELECT recipient, event_type FROM events ORDER BY recipient")
        assert [tuple(r) for r in stored] == [
            ("challenge@example.org", "auto_replied"),
            ("john@example.com", "auto_replied"),
            ("soft@example.org", "bounced"),
            ("vacation@example.org", "auto_replied"),
        ]
        await eventually(lambda: outbox_empty(gw))
        listed = await gw.client.get("/v1/suppressions", headers=AUTH)
        assert [item["address"] for item in listed.json()["items"]] == ["soft@example.org"]

        report = await gw.client.get(
            "/v1/stats",
            params={"since": "2016-01-01", "until": "2020-01-01", "group_by": "provider"},
            headers=AUTH,
        )
        groups = {group["key"]: group for group in report.json()["groups"]}
        assert groups["sparkpost"]["counts"]["auto_replied"] == 2
        assert groups["sparkpost"]["counts"]["bounced"] == 1
        assert groups["postmark"]["counts"]["auto_replied"] == 1
        assert groups["postmark"]["counts"]["bounced"] == 0
        assert groups["postmark"]["rates"]["bounce_rate"] is None


async def test_non_tracking_traffic_is_acknowledged_counted_and_never_stored(
    gateway_factory: Any,
) -> None:
    """Postal's failure to forward an *incoming* message, Postmark's inbound webhook and a
    signed Mailgun inbound route at the tracking URL answer 200 with nothing accepted, are
    counted by kind, and store no event and no suppression (the Postal one used to
    hard-bounce the inbound address)."""
    postal_spec, postal_key = samples_for("postal").make_source("main")
    mailgun_spec, mailgun_key = samples_for("mailgun").make_source("main")
    sources = [
        {"provider": "postal", "name": "main", "signing_key": postal_spec.signing_key},
        {"provider": "mailgun", "name": "main", "signing_key": mailgun_spec.signing_key},
        unsigned_source("postmark"),
    ]
    async with gateway_factory(sources=sources, admin={"token": TOKEN}) as gw:
        body = (FIXTURES / "postal" / "message_delivery_failed_incoming.json").read_bytes()
        request = samples_for("postal").signed_request(
            postal_spec, postal_key, body, now=datetime.now(UTC)
        )
        response = await gw.client.post(
            "/webhooks/postal/main", content=request.body, headers=dict(request.headers)
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 0, "duplicates": 0}
        inbound = (FIXTURES / "postmark" / "inbound.json").read_bytes()
        response = await post_json(gw, "postmark", inbound)
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 0, "duplicates": 0}

        fields = json.loads((FIXTURES / "mailgun" / "inbound_route_fields.json").read_bytes())
        timestamp, token = str(int(datetime.now(UTC).timestamp())), "b" * 50
        signature = mailgun.sign(mailgun_key, timestamp, token)
        fields.update(timestamp=timestamp, token=token, signature=signature)
        response = await gw.client.post("/webhooks/mailgun/main", files={}, data=fields)
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 0, "duplicates": 0}

        assert (await rows(gw, "SELECT count(*) AS n FROM events"))[0]["n"] == 0
        assert (await rows(gw, "SELECT count(*) AS n FROM outbox"))[0]["n"] == 0
        assert (await rows(gw, "SELECT count(*) AS n FROM suppressions"))[0]["n"] == 0
        # counted and logged, not kept: /v1/control-messages is for SNS subscriptions
        assert (await rows(gw, "SELECT count(*) AS n FROM control_messages"))[0]["n"] == 0
        metric = "hookline_control_messages_total"
        assert gw.metric(metric, provider="postal", kind="inbound_event") == 1
        assert gw.metric(metric, provider="postmark", kind="inbound_message") == 1
        assert gw.metric(metric, provider="mailgun", kind="inbound_message") == 1
        for provider in ("postal", "postmark", "mailgun"):
            assert (
                gw.metric("hookline_webhook_requests_total", provider=provider, outcome="control")
                == 1
            )


async def test_a_recipient_written_with_a_display_name_is_one_canonical_address(
    gateway_factory: Any,
) -> None:
    """Resend echoes ``Recipient <To@Example.ORG>``: the event is stored for
    ``To@example.org`` (raw keeps the ESP's spelling), its hard bounce suppresses that
    address, and lookups in any spelling find both the events and the suppression."""
    spec, secret = samples_for("resend").make_source("main")
    source = {"provider": "resend", "name": "main", "signing_key": spec.signing_key}
    async with gateway_factory(sources=[source], admin={"token": TOKEN}) as gw:
        body = (FIXTURES / "resend" / "email_bounced_display_name.json").read_bytes()
        request = samples_for("resend").signed_request(spec, secret, body, now=datetime.now(UTC))
        response = await gw.client.post(
            "/webhooks/resend/main", content=request.body, headers=dict(request.headers)
        )
        assert response.status_code == 200, response.text
        stored = await rows(gw, "SELECT recipient, raw->'data'->'to' AS to FROM events")
        assert [(r["recipient"], json.loads(r["to"])) for r in stored] == [
            ("To@example.org", ["Recipient <To@Example.ORG>"])
        ]
        await eventually(lambda: outbox_empty(gw))
        for spelling in ("to@example.org", "TO@EXAMPLE.ORG"):
            entry = await gw.client.get(f"/v1/suppressions/{spelling}", headers=AUTH)
            assert entry.status_code == 200, entry.text
            assert entry.json()["reason"] == "hard_bounce"
            assert entry.json()["address"] == "To@example.org"
            history = await gw.client.get(f"/v1/recipients/{spelling}", headers=AUTH)
            assert history.status_code == 200, history.text
            assert history.json()["counts"] == {"bounced": 1}
            assert history.json()["suppressed"] is True
        events = await gw.client.get(
            "/v1/events", params={"recipient": "Recipient <to@EXAMPLE.org>"}, headers=AUTH
        )
        assert [e["recipient"] for e in events.json()["items"]] == ["To@example.org"]


async def test_sparkpost_initial_open_and_open_count_one_unique_open(
    gateway_factory: Any,
) -> None:
    """Judgment call: SparkPost's initial_open (top pixel) and open (bottom pixel) are both
    opens, as are their AMP twins, so with both kinds of tracking one reading sends two
    events; every open rate counts the first open per message and recipient, so the stats
    show one unique open, and the raw open count says what was received."""
    async with gateway_factory(
        sources=[unsigned_source("sparkpost")], admin={"token": TOKEN}
    ) as gw:
        batch = json.loads((FIXTURES / "sparkpost" / "all_events.json").read_bytes())
        opens = [
            item
            for item in batch
            if item["msys"].get("track_event", {}).get("type")
            in ("open", "initial_open", "amp_open", "amp_initial_open")
        ]
        assert len(opens) == 4
        for index, item in enumerate(opens):  # one reader, one message
            item["msys"]["track_event"].update(
                event_id=f"77{index}", rcpt_to="reader@example.org", raw_rcpt_to=None
            )
        response = await post_json(gw, "sparkpost", json.dumps(opens).encode())
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 4
        report = await gw.client.get(
            "/v1/stats",
            params={"since": "2016-01-01", "until": "2020-01-01", "group_by": "provider"},
            headers=AUTH,
        )
        (group,) = report.json()["groups"]
        assert group["counts"]["opened"] == 4
        assert group["details"]["unique_opens"] == 1
