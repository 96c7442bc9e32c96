"""Amazon SES through SNS over real HTTP: notifications stored, subscription confirmations
answered 200, recorded and visible to operators, never stored as email events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from hookline_testing import TEST_CERT_URL, samples_for

SPEC, MATERIAL = samples_for("ses").make_source("prod")
SOURCES = [
    {
        "provider": "ses",
        "name": "prod",
        "topic_arns": list(SPEC.topic_arns),
        "sns_certificates": {TEST_CERT_URL: SPEC.sns_certificates[TEST_CERT_URL]},
    }
]
TOKEN = "admin-token-for-tests"


async def post_sns(gw: Any, body: bytes) -> Any:
    request = samples_for("ses").signed_request(SPEC, MATERIAL, body, now=datetime.now(UTC))
    return await gw.client.post(
        "/webhooks/ses/prod", content=request.body, headers=dict(request.headers)
    )


async def test_ses_notification_with_several_recipients_becomes_one_row_each(
    gateway_factory: Any,
) -> None:
    async with gateway_factory(sources=SOURCES) as gw:
        response = await post_sns(gw, samples_for("ses").example_body(3, seed=1, event="Bounce"))
        assert response.status_code == 200, response.text
        assert response.json() == {"accepted": 3, "duplicates": 0}
        again = await post_sns(gw, samples_for("ses").example_body(3, seed=1, event="Bounce"))
        assert again.json() == {"accepted": 3, "duplicates": 3}
        conn = await asyncpg.connect(gw.settings.database.url)
        try:
            rows = await conn.fetch("SELECT event_type, bounce_class, recipient FROM events")
        finally:
            await conn.close()
        assert len(rows) == 3
        assert {row["event_type"] for row in rows} == {"bounced"}
        assert gw.metric("hookline_bounces_total", provider="ses", bounce_class="hard") == 3


async def test_subscription_confirmation_is_acknowledged_recorded_and_listed(
    gateway_factory: Any,
) -> None:
    async with gateway_factory(sources=SOURCES, admin={"token": TOKEN}) as gw:
        response = await post_sns(
            gw, samples_for("ses").example_body(seed=2, event="SubscriptionConfirmation")
        )
        assert response.status_code == 200
        assert response.json() == {"accepted": 0, "duplicates": 0}
        assert (
            gw.metric(
                "hookline_control_messages_total", provider="ses", kind="subscription_confirmation"
            )
            == 1
        )
        assert gw.metric("hookline_webhook_requests_total", provider="ses", outcome="control") == 1
        listed = await gw.client.get(
            "/v1/control-messages", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert listed.status_code == 200
        (item,) = listed.json()["items"]
        assert item["kind"] == "subscription_confirmation"
        assert item["confirm_url"].startswith("https://sns.us-east-1.amazonaws.com/")
        assert item["detail"]["topic_arn"] == SPEC.topic_arns[0]
        assert (await gw.client.get("/v1/control-messages")).status_code == 401


async def test_sns_message_from_an_unlisted_topic_is_401(gateway_factory: Any) -> None:
    sources = [{**SOURCES[0], "topic_arns": ["arn:aws:sns:us-east-1:123456789012:other"]}]
    async with gateway_factory(sources=sources) as gw:
        response = await post_sns(gw, samples_for("ses").example_body(1, seed=3))
        assert response.status_code == 401
        assert (
            gw.metric("hookline_signature_failures_total", provider="ses", reason="untrusted") == 1
        )
