"""SNS hardening over real HTTP: a malformed SigningCertURL is a 401, never a 500, whether
the source pins certificates or would fetch them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from hookline_testing import TEST_CERT_URL, samples_for

SPEC, MATERIAL = samples_for("ses").make_source("prod")


def sources(pinned: bool) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {"provider": "ses", "name": "prod", "topic_arns": list(SPEC.topic_arns)}
    if pinned:
        entry["sns_certificates"] = {TEST_CERT_URL: SPEC.sns_certificates[TEST_CERT_URL]}
    return [entry]


@pytest.mark.parametrize("pinned", [True, False])
@pytest.mark.parametrize("suffix", ["\n", " ", "?x", "#y"])
async def test_signing_cert_url_with_trailing_characters_is_untrusted(
    gateway_factory: Any, pinned: bool, suffix: str
) -> None:
    """A correctly signed notification whose SigningCertURL has anything after ``.pem`` (a
    newline used to answer 500) is refused 401 as untrusted, and nothing is stored."""
    now = datetime.now(UTC)
    material = replace(MATERIAL, cert_url=TEST_CERT_URL + suffix)
    request = samples_for("ses").signed_request(
        SPEC, material, samples_for("ses").example_body(seed=7, now=now), now=now
    )
    async with gateway_factory(sources=sources(pinned)) as gw:
        response = await gw.client.post(
            "/webhooks/ses/prod", content=request.body, headers=dict(request.headers)
        )
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert (
            gw.metric("hookline_signature_failures_total", provider="ses", reason="untrusted") == 1
        )
        assert (
            gw.metric("hookline_events_received_total", provider="ses", event_type="delivered") == 0
        )
