"""The ``source`` label on the ingest counters: the configured source's name, else "unknown"."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hookline_testing import samples_for
from observability.metrics import REQUEST_OUTCOMES

MAIN_SPEC, MAIN_KEY = samples_for("sendgrid").make_source("main")
SECOND_SPEC, SECOND_KEY = samples_for("sendgrid").make_source("second")
SOURCES = [
    {"provider": s.provider, "name": s.name, "signing_key": s.signing_key}
    for s in (MAIN_SPEC, SECOND_SPEC)
]


def sample(gw: Any, name: str, **labels: str) -> float | None:
    """One sample with exactly these labels (None when the series does not exist)."""
    value = gw.metrics.registry.get_sample_value(name, labels)
    return None if value is None else float(value)


async def test_two_sources_of_one_provider_are_counted_apart(gateway_factory: Any) -> None:
    """Requests and stored events carry the configured source's name, so two accounts of one
    ESP are told apart; every configured (provider, source) pair is pre-created at zero."""
    async with gateway_factory(sources=SOURCES) as gw:
        for outcome in REQUEST_OUTCOMES:
            labels = {"provider": "sendgrid", "source": "second", "outcome": outcome}
            assert sample(gw, "hookline_webhook_requests_total", **labels) == 0.0, outcome
        body = samples_for("sendgrid").example_body(4, seed=41)
        request = samples_for("sendgrid").signed_request(
            MAIN_SPEC, MAIN_KEY, body, now=datetime.now(UTC)
        )
        response = await gw.client.post(
            "/webhooks/sendgrid/main", content=request.body, headers=dict(request.headers)
        )
        assert response.status_code == 200, response.text
        bad = samples_for("sendgrid").signed_request(
            MAIN_SPEC, MAIN_KEY, body, now=datetime.now(UTC)
        )
        headers = {**dict(bad.headers)}
        response = await gw.client.post(  # main's signature on second's URL: 401 for second
            "/webhooks/sendgrid/second", content=bad.body, headers=headers
        )
        assert response.status_code == 401, response.text
        requests = "hookline_webhook_requests_total"
        assert sample(gw, requests, provider="sendgrid", source="main", outcome="accepted") == 1
        assert sample(gw, requests, provider="sendgrid", source="second", outcome="accepted") == 0
        assert (
            sample(gw, requests, provider="sendgrid", source="second", outcome="unauthorized") == 1
        )
        assert sample(gw, requests, provider="sendgrid", source="main", outcome="unauthorized") == 0
        received = "hookline_events_received_total"
        stored_main = sum(
            s.value
            for family in gw.metrics.registry.collect()
            for s in family.samples
            if s.name == received and s.labels["source"] == "main"
        )
        assert stored_main == 4
        assert gw.metric(received, source="second") == 0


async def test_an_unconfigured_source_name_never_becomes_a_label(gateway_factory: Any) -> None:
    """A POST to /webhooks/<provider>/<a name nobody configured> is a 404 counted under
    source="unknown": the sender cannot create a series by choosing URLs."""
    async with gateway_factory(sources=SOURCES) as gw:
        for name in ("attacker-1", "attacker-2"):
            response = await gw.client.post(f"/webhooks/sendgrid/{name}", content=b"[]")
            assert response.status_code == 404
        response = await gw.client.post("/webhooks/nosuchesp/whatever", content=b"[]")
        assert response.status_code == 404
        requests = "hookline_webhook_requests_total"
        assert sample(gw, requests, provider="sendgrid", source="unknown", outcome="not_found") == 2
        assert sample(gw, requests, provider="unknown", source="unknown", outcome="not_found") == 1
        sources = {
            s.labels["source"]
            for family in gw.metrics.registry.collect()
            for s in family.samples
            if "source" in s.labels
        }
        assert sources == {"main", "second", "unknown"}, sources
