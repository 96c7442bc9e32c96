"""Hostile bodies through a real gateway (real HTTP, real PostgreSQL, real credentials):
deeply nested JSON is a 4xx problem for every provider, never a 5xx, and a batch with a
malformed item is acknowledged with its good events stored."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import asyncpg

from handlers._common import MAX_JSON_DEPTH
from handlers.base import SourceSpec
from handlers.registry import PROVIDERS
from hookline_testing import samples_for

#: providers whose signature is a field of the JSON body (Mailgun, SNS for SES)
SIGNED_INSIDE_THE_BODY = ("mailgun", "ses")


def source_config(spec: SourceSpec) -> dict[str, Any]:
    """The ``[[sources]]`` entry that configures ``spec`` (every credential it carries)."""
    entry = {
        key: value
        for key, value in dataclasses.asdict(spec).items()
        if value not in (None, (), {}) and key not in ("replay_window_seconds",)
    }
    entry["topic_arns"] = list(spec.topic_arns)
    entry["sns_certificates"] = dict(spec.sns_certificates)
    return entry


def hostile_source(provider: str) -> tuple[SourceSpec, Any]:
    overrides: dict[str, Any] = {}
    if provider == "mandrill":  # Mandrill signs the URL: pin the one the helper signs
        overrides["url"] = "http://hookline.test/webhooks/mandrill/hostile"
    source, material = samples_for(provider).make_source("hostile", **overrides)
    return source, material


def deep_document(depth: int, kind: str) -> str:
    close = "]" if kind == "[" else "}"
    return kind * depth + "1" + close * depth


def deep_body(provider: str, document: str) -> bytes:
    if provider == "mandrill":  # the JSON Mandrill sends lives in a form field
        return urlencode({"mandrill_events": document}).encode()
    return document.encode()


async def rows(gw: Any, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(gw.settings.database.url)
    try:
        return list(await conn.fetch(query))
    finally:
        await conn.close()


async def test_deeply_nested_bodies_are_4xx_problems_for_every_provider(
    gateway_factory: Any,
) -> None:
    """For each of the ten providers, a body nested one level past the bound (arrays, and
    objects), and one nested 50 000 levels deep (past the decoder's recursion limit), sent
    with valid credentials (Mailgun and SES carry their signature inside the body, so
    theirs has none), answer 400 problem+json naming the body (SES: its SNS envelope is
    verified first, 401), are counted by outcome and store nothing; none answers 5xx."""
    sources = {provider: hostile_source(provider) for provider in PROVIDERS}
    config = [source_config(spec) for spec, _ in sources.values()]
    async with gateway_factory(sources=config) as gw:
        for provider, (spec, material) in sources.items():
            for document in (
                deep_document(MAX_JSON_DEPTH + 1, "["),
                deep_document(MAX_JSON_DEPTH + 1, '{"k":'),
                deep_document(50_000, "["),
            ):
                body = deep_body(provider, document)
                if provider in SIGNED_INSIDE_THE_BODY:  # a deep body carries no signature
                    headers = {"content-type": "application/json"}
                else:
                    request = samples_for(provider).signed_request(
                        spec, material, body, now=datetime.now(UTC)
                    )
                    headers = dict(request.headers)
                response = await gw.client.post(
                    f"/webhooks/{provider}/{spec.name}", content=body, headers=headers
                )
                assert response.headers["content-type"] == "application/problem+json", provider
                problem = response.json()
                assert problem["status"] == response.status_code
                if provider == "ses":
                    assert response.status_code == 401, response.text
                    continue
                assert response.status_code == 400, (provider, response.text)
                assert problem["field"] == ("mandrill_events" if provider == "mandrill" else "body")
                assert "deeper than" in problem["detail"]
            outcome = "unauthorized" if provider == "ses" else "bad_request"
            labels = {"provider": provider, "outcome": outcome}
            assert gw.metric("hookline_webhook_requests_total", **labels) == 3, provider
        assert await rows(gw, "SELECT 1 FROM events") == []


async def test_unauthenticated_deep_mailgun_body_is_refused_before_any_signature_work(
    gateway_factory: Any,
) -> None:
    """Mailgun's signature lives inside the body, so the body is read before anything is
    authenticated: a deep body with no valid signature is refused by the depth bound
    (400), not by a RecursionError (500) or after decoding it."""
    spec, _ = hostile_source("mailgun")
    async with gateway_factory(sources=[source_config(spec)]) as gw:
        response = await gw.client.post(
            f"/webhooks/mailgun/{spec.name}",
            content=deep_document(20_000, '{"signature":').encode(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert response.json()["field"] == "body"
        assert gw.metric("hookline_signature_failures_total", provider="mailgun") == 0


async def test_sendgrid_batch_with_malformed_items_stores_the_good_ones(
    gateway_factory: Any,
) -> None:
    """A signed SendGrid batch of five items, two of them malformed (an item that is not an
    object, and one whose timestamp is not a time): 200, and exactly the three good events
    are stored, each with its own id."""
    spec, key = hostile_source("sendgrid")
    items = json.loads(samples_for("sendgrid").example_body(3, seed=41))
    good_ids = sorted(item["sg_event_id"] for item in items)
    broken = {**items[0], "sg_event_id": "broken-1", "timestamp": "yesterday"}
    batch = [items[0], "not an event", items[1], broken, items[2]]
    body = json.dumps(batch).encode() + b"\r\n"
    async with gateway_factory(sources=[source_config(spec)]) as gw:
        request = samples_for("sendgrid").signed_request(spec, key, body, now=datetime.now(UTC))
        response = await gw.client.post(
            f"/webhooks/sendgrid/{spec.name}", content=request.body, headers=dict(request.headers)
        )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 3
        stored = await rows(gw, "SELECT provider_event_id FROM events ORDER BY 1")
        assert [row["provider_event_id"] for row in stored] == good_ids
