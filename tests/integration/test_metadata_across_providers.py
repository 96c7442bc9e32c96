"""``metadata=key:value`` finds a sender's own message the same way on every provider: each
ESP's documented place for custom data, sent by the ESP's own kind of signed request to a
running gateway, searched through ``GET /v1/events`` (issue #17)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from handlers.base import SourceSpec
from handlers.registry import PROVIDERS
from hookline_testing import samples_for

TOKEN = "metadata-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEY, VALUE = "gw_message_id", "gw-7c1e2a"


def source_config(spec: SourceSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"provider": spec.provider, "name": spec.name}
    for field in ("signing_key", "basic_auth", "bearer_token"):
        if getattr(spec, field) is not None:
            entry[field] = getattr(spec, field)
    if spec.topic_arns:
        entry["topic_arns"] = list(spec.topic_arns)
        entry["sns_certificates"] = dict(spec.sns_certificates)
    return entry


async def test_metadata_search_finds_the_message_on_every_provider(
    gateway_factory: Any,
) -> None:
    """The same key:value attached the documented way at each of the ten ESPs is found by
    one metadata search, once per provider that can carry it (each sample module says where,
    ``add_metadata``), stored as a scalar everywhere (SES's one-element tag array included)."""
    samples_of = {provider: samples_for(provider) for provider in PROVIDERS}
    sources = {provider: samples_of[provider].make_source("main") for provider in PROVIDERS}
    async with gateway_factory(
        sources=[source_config(spec) for spec, _ in sources.values()], admin={"token": TOKEN}
    ) as gw:
        for seed, provider in enumerate(PROVIDERS, start=1):
            module, (spec, material) = samples_of[provider], sources[provider]
            body = module.example_body(seed=seed)
            edit = samples_of[provider].add_metadata
            if edit is not None:
                body = edit(body, KEY, VALUE)
            path = f"/webhooks/{provider}/main"
            request = module.signed_request(
                spec, material, body, now=datetime.now(UTC), url=gw.url + path
            )
            response = await gw.client.post(
                path, content=request.body, headers=dict(request.headers)
            )
            assert response.status_code == 200, (provider, response.text)
            assert response.json()["accepted"] >= 1, provider

        found = await gw.client.get(
            "/v1/events", params={"metadata": f"{KEY}:{VALUE}", "limit": 100}, headers=AUTH
        )
        assert found.status_code == 200, found.text
        items = found.json()["items"]
        carriers = {p for p, samples in samples_of.items() if samples.add_metadata is not None}
        assert sorted(item["provider"] for item in items) == sorted(carriers)
        assert {item["metadata"][KEY] for item in items} == {VALUE}
