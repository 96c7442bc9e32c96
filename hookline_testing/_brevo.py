"""Brevo samples: one object, or a batched array, basic auth (Brevo signs nothing)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import msgspec

from handlers import brevo
from handlers.base import SourceSpec
from hookline_testing._batch import json_array, top_level
from hookline_testing._http import unsigned_json_request
from hookline_testing._samples import Samples

_EXAMPLE_EXTRA: dict[str, dict[str, Any]] = {
    "hard_bounce": {"reason": "550 5.1.1 The email account that you tried to reach does not exist"},
    "soft_bounce": {"reason": "452 4.2.2 Mailbox full"},
    "deferred": {"reason": "451 4.7.1 Greylisted"},
    "click": {"link": "https://example.com/a", "user_agent": "Mozilla/5.0"},
    "opened": {"user_agent": "Mozilla/5.0", "device_used": "DESKTOP"},
    "proxy_open": {"user_agent": "Mozilla/5.0", "device_used": "DESKTOP"},
}


def make_test_source(name: str = "test", **overrides: Any) -> tuple[SourceSpec, Any]:
    """A SourceSpec with fresh basic-auth credentials; the material is ``user:password``."""
    fields: dict[str, Any] = {"basic_auth": f"brevo:{secrets.token_urlsafe(18)}"}
    fields.update(overrides)
    source = SourceSpec(provider="brevo", name=name, **fields)
    return source, source.basic_auth


def example_body(
    count: int = 1, *, seed: int = 0, event: str | None = None, now: datetime | None = None
) -> bytes:
    """Brevo events (default ``delivered``): a single object when count is 1, else a batched
    array, as Brevo sends with ``batched: true``. ``now`` dates them (default: a fixed date
    in November 2023)."""
    base = int(now.timestamp()) if now is not None else 1700000000
    date = datetime.fromtimestamp(base + 3600, UTC).strftime("%Y-%m-%d %H:%M:%S")
    event_name = event or "delivered"
    items = []
    for index in range(count):
        unique = seed * 1_000_000 + index
        item: dict[str, Any] = {
            "event": event_name,
            "email": f"user{seed}-{index}@example.com",
            "id": 1234567,
            "date": date,
            "ts": base + 3600,
            "message-id": f"<202311142213.{unique:016d}@smtp-relay.mailin.fr>",
            "ts_event": base + index,
            "subject": "Your receipt",
            "X-Mailin-custom": f"order_id:order-{seed}-{index}|tenant:acme",
            "sending_ip": "185.41.28.109",
            "ts_epoch": (base + index) * 1000 + seed % 1000,
            "template_id": 22,
            "tags": ["transac_messages"],
        }
        item.update(_EXAMPLE_EXTRA.get(event_name, {}))
        items.append(item)
    return msgspec.json.encode(items[0] if count == 1 else items)


def add_metadata(body: bytes, key: str, value: str) -> bytes:
    """``X-Mailin-custom`` (``key:value|...``) of the (first) event."""
    document = msgspec.json.decode(body)
    first = document[0] if isinstance(document, list) else document
    first["X-Mailin-custom"] = f"{key}:{value}"
    return msgspec.json.encode(document)


SAMPLES = Samples(
    provider="brevo",
    traffic_share=6,
    make_source=make_test_source,
    example_body=example_body,
    signed_request=unsigned_json_request,
    # a hard bounce stands for bounced (listed first)
    events=tuple(dict.fromkeys(("hard_bounce", *brevo.EVENT_TYPES))),
    one_event_per_request=False,
    add_metadata=add_metadata,
    batch_items=json_array(top_level("event")),
)
