"""SNS subscription tokens stay out of the logs: a real ``hookline serve`` at info level
receives a SubscriptionConfirmation and an UnsubscribeConfirmation, and its whole output is
scanned for the token."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec

from hookline_testing import TEST_CERT_URL, samples_for
from tests.integration._gateway_process import clean_environment, run_gateway

SPEC, MATERIAL = samples_for("ses").make_source("prod")


async def test_subscription_tokens_are_not_logged(fresh_db_url: str, tmp_path: Path) -> None:
    """The control message is logged (kind, topic, message id) but never its token, neither
    on its own nor inside the SubscribeURL."""
    config = {
        "database": {"url": fresh_db_url, "pool_min_size": 1, "pool_max_size": 3},
        "storage": {"data_dir": str(tmp_path / "data")},
        "logging": {"format": "json", "level": "info"},
        "sources": [
            {
                "provider": "ses",
                "name": "prod",
                "topic_arns": list(SPEC.topic_arns),
                # to_toml quotes a key that cannot be bare, such as this URL
                "sns_certificates": {TEST_CERT_URL: SPEC.sns_certificates[TEST_CERT_URL]},
            }
        ],
    }
    tokens = []
    async with (
        run_gateway(config, tmp_path, clean_environment()) as gateway,
        httpx.AsyncClient(base_url=gateway.url, timeout=30.0) as client,
    ):
        for seed, kind in ((21, "SubscriptionConfirmation"), (22, "UnsubscribeConfirmation")):
            body = samples_for("ses").example_body(seed=seed, event=kind)
            tokens.append(msgspec.json.decode(body)["Token"])
            request = samples_for("ses").signed_request(SPEC, MATERIAL, body, now=datetime.now(UTC))
            response = await client.post(
                "/webhooks/ses/prod", content=request.body, headers=dict(request.headers)
            )
            assert response.status_code == 200, response.text
    output = gateway.stderr()
    logged = [
        line for line in gateway.json_lines() if line.get("event") == "webhook.control_message"
    ]
    assert {line["kind"] for line in logged} == {
        "subscription_confirmation",
        "unsubscribe_confirmation",
    }
    for token in tokens:
        assert token not in output
