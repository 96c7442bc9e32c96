"""Mailjet samples: grouped batches (arrays), basic auth (Mailjet signs nothing)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import msgspec

from handlers import mailjet
from handlers.base import SourceSpec
from hookline_testing._batch import json_array, top_level
from hookline_testing._http import unsigned_json_request
from hookline_testing._samples import Samples

_EXAMPLE_EXTRA: dict[str, dict[str, Any]] = {
    "sent": {"smtp_reply": "sent (250 2.0.0 OK 1433333948 fa5si855896wjc.199 - gsmtp)"},
    "open": {"ip": "127.0.0.1", "geo": "US", "agent": "Mozilla/5.0"},
    "click": {
        "url": "https://www.mailjet.com",
        "ip": "127.0.0.1",
        "geo": "FR",
        "agent": "Mozilla/5.0",
    },
    "bounce": {
        "blocked": False,
        "hard_bounce": True,
        "error_related_to": "recipient",
        "error": "user unknown",
        "comment": "Host or domain name not found. Name service error",
    },
    "blocked": {"error_related_to": "recipient", "error": "user unknown"},
    "spam": {"source": "JMRPP"},
    "unsub": {"mj_list_id": 1, "ip": "127.0.0.1", "geo": "FR", "agent": "Mozilla/5.0"},
}


def make_test_source(name: str = "test", **overrides: Any) -> tuple[SourceSpec, Any]:
    """A SourceSpec with fresh basic-auth credentials; the material is ``user:password``."""
    fields: dict[str, Any] = {"basic_auth": f"mailjet:{secrets.token_urlsafe(18)}"}
    fields.update(overrides)
    source = SourceSpec(provider="mailjet", name=name, **fields)
    return source, source.basic_auth


def example_body(
    count: int = 1, *, seed: int = 0, event: str | None = None, now: datetime | None = None
) -> bytes:
    """A Mailjet grouped batch (array) of ``count`` events (default ``sent``); ``now`` dates
    them (default: a fixed date in November 2023)."""
    base = int(now.timestamp()) if now is not None else 1700000000
    event_name = event or "sent"
    items = []
    for index in range(count):
        unique = seed * 1_000_000 + index
        item: dict[str, Any] = {
            "event": event_name,
            "time": base + index,
            "MessageID": 19421777835146490 + unique,
            "Message_GUID": f"1ab23cd4-e567-8901-2345-{unique:012x}",
            "email": f"user{seed}-{index}@example.com",
            "mj_campaign_id": 7257,
            "mj_contact_id": 4 + index,
            "customcampaign": "",
            "CustomID": f"order-{seed}-{index}",
            "Payload": '{"tenant": "acme"}',
        }
        item.update(_EXAMPLE_EXTRA.get(event_name, {}))
        items.append(item)
    return msgspec.json.encode(items)


def add_metadata(body: bytes, key: str, value: str) -> bytes:
    """``Payload`` (a JSON text) of the (first) event."""
    items = msgspec.json.decode(body)
    items[0]["Payload"] = msgspec.json.encode({key: value}).decode()
    return msgspec.json.encode(items)


SAMPLES = Samples(
    provider="mailjet",
    traffic_share=6,
    make_source=make_test_source,
    example_body=example_body,
    signed_request=unsigned_json_request,
    events=tuple(mailjet.EVENT_TYPES),
    one_event_per_request=False,
    add_metadata=add_metadata,
    batch_items=json_array(top_level("event")),
)
