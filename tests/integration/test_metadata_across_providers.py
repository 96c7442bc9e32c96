"""``metadata=key:value`` finds a sender's own message the same way on every provider: each
ESP's documented place for custom data, sent by the ESP's own kind of signed request to a
running gateway, searched through ``GET /v1/events`` (issue #17)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from handlers.base import SourceSpec
from handlers.registry import PROVIDERS

TOKEN = "metadata-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
KEY, VALUE = "gw_message_id", "gw-7c1e2a"


def _json(edit: Callable[[Any], None]) -> Callable[[bytes], bytes]:
    def apply(body: bytes) -> bytes:
        data = json.loads(body)
        edit(data)
        return json.dumps(data).encode()

    return apply


def _first(data: Any) -> Any:
    return data[0] if isinstance(data, list) else data


def _ses(envelope: Any) -> None:
    message = json.loads(envelope["Message"])
    message["mail"].setdefault("tags", {})[KEY] = [VALUE]  # SES sends every tag as an array
    envelope["Message"] = json.dumps(message)


def _sparkpost(data: Any) -> None:
    (event,) = data[0]["msys"].values()
    event["rcpt_meta"] = {KEY: VALUE}


def _mandrill(body: bytes) -> bytes:
    fields = dict(parse_qsl(body.decode()))
    events = json.loads(fields["mandrill_events"])
    events[0]["msg"]["metadata"] = {KEY: VALUE}
    fields["mandrill_events"] = json.dumps(events)
    return urlencode(fields).encode()


#: where each ESP carries the sender's custom data (None: the ESP sends none)
WITH_METADATA: dict[str, Callable[[bytes], bytes] | None] = {
    "sendgrid": _json(lambda d: _first(d).update({KEY: VALUE})),  # custom args, top level
    "mailgun": _json(lambda d: d["event-data"].update({"user-variables": {KEY: VALUE}})),
    "postmark": _json(lambda d: _first(d).update({"Metadata": {KEY: VALUE}})),
    "ses": _json(_ses),
    "sparkpost": _json(_sparkpost),
    "mailjet": _json(lambda d: _first(d).update({"Payload": json.dumps({KEY: VALUE})})),
    "mandrill": _mandrill,
    "brevo": _json(lambda d: _first(d).update({"X-Mailin-custom": f"{KEY}:{VALUE}"})),
    "resend": _json(lambda d: d["data"].update({"tags": {KEY: VALUE}})),
    # Postal's webhooks carry no custom data (only the message's tag): nothing to search
    "postal": None,
}


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
    one metadata search, once per provider that can carry it, stored as a scalar everywhere
    (SES's one-element tag array included)."""
    assert set(WITH_METADATA) == set(PROVIDERS), "a provider without a decision"
    modules = {provider: importlib.import_module(f"handlers.{provider}") for provider in PROVIDERS}
    sources = {provider: modules[provider].make_test_source("main") for provider in PROVIDERS}
    async with gateway_factory(
        sources=[source_config(spec) for spec, _ in sources.values()], admin={"token": TOKEN}
    ) as gw:
        for seed, provider in enumerate(PROVIDERS, start=1):
            module, (spec, material) = modules[provider], sources[provider]
            body = module.example_body(seed=seed)
            edit = WITH_METADATA[provider]
            if edit is not None:
                body = edit(body)
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
        carriers = {p for p, edit in WITH_METADATA.items() if edit is not None}
        assert sorted(item["provider"] for item in items) == sorted(carriers)
        assert {item["metadata"][KEY] for item in items} == {VALUE}
