"""SparkPost samples: batches of ``msys`` events, basic auth (SparkPost signs nothing)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import msgspec

from handlers import sparkpost
from handlers.base import SourceSpec
from hookline_testing._batch import json_array
from hookline_testing._http import unsigned_json_request
from hookline_testing._samples import Samples

_EVENT_CLASSES: dict[str, str] = {
    "open": "track_event",
    "initial_open": "track_event",
    "amp_open": "track_event",
    "amp_initial_open": "track_event",
    "click": "track_event",
    "amp_click": "track_event",
    "generation_failure": "gen_event",
    "generation_rejection": "gen_event",
    "list_unsubscribe": "unsubscribe_event",
    "link_unsubscribe": "unsubscribe_event",
}

_EXAMPLE_EXTRA: dict[str, dict[str, Any]] = {
    "delivery": {"queue_time": "3004", "num_retries": "0", "outbound_tls": "1"},
    "bounce": {
        "bounce_class": "10",
        "error_code": "550",
        "raw_reason": "550 5.1.1 <recipient@example.com>: Recipient address rejected",
        "reason": "550 5.1.1 ...@... Recipient address rejected",
    },
    "delay": {
        "bounce_class": "21",
        "error_code": "454",
        "raw_reason": "454 4.4.4 [internal] no MX or A for domain",
        "reason": "454 4.4.4 [internal] no MX or A for domain",
        "num_retries": "1",
    },
}


def make_test_source(name: str = "test", **overrides: Any) -> tuple[SourceSpec, Any]:
    """A SourceSpec with fresh basic-auth credentials; the material is ``user:password``."""
    fields: dict[str, Any] = {"basic_auth": f"sparkpost:{secrets.token_urlsafe(18)}"}
    fields.update(overrides)
    source = SourceSpec(provider="sparkpost", name=name, **fields)
    return source, source.basic_auth


def example_body(
    count: int = 1, *, seed: int = 0, event: str | None = None, now: datetime | None = None
) -> bytes:
    """A SparkPost batch of ``count`` events (default ``delivery``), distinct per seed;
    ``now`` dates them (default: a fixed date in November 2023)."""
    base = int(now.timestamp()) if now is not None else 1700000000
    event_type = event or "delivery"
    event_class = _EVENT_CLASSES.get(event_type, "message_event")
    items = []
    for index in range(count):
        unique = seed * 1_000_000 + index
        body: dict[str, Any] = {
            "type": event_type,
            "event_id": str(92356927693813856 + unique),
            "timestamp": str(base + index),
            "transmission_id": str(65832150921904138 + seed),
            "message_id": f"{unique:020x}",
            "campaign_id": "Example Campaign Name",
            "customer_id": "1",
            "rcpt_to": f"user{seed}-{index}@example.com",
            "raw_rcpt_to": f"user{seed}-{index}@example.com",
            "rcpt_meta": {"customKey": f"value-{seed}-{index}"},
            "rcpt_tags": ["male", "US"],
            "friendly_from": "sender@example.com",
            "msg_from": "sender@example.com",
            "ip_address": "127.0.0.1",
            "sending_ip": "127.0.0.1",
            "subject": "Summer deals are here!",
            "template_id": "templ-1234",
            "template_version": "1",
            "routing_domain": "example.com",
        }
        body.update(_EXAMPLE_EXTRA.get(event_type, {}))
        items.append({"msys": {event_class: body}})
    return msgspec.json.encode(items)


def add_metadata(body: bytes, key: str, value: str) -> bytes:
    """``rcpt_meta`` of the (first) event."""
    items = msgspec.json.decode(body)
    (event,) = items[0]["msys"].values()
    event["rcpt_meta"] = {key: value}
    return msgspec.json.encode(items)


def _required_type(item: Any) -> tuple[dict[str, Any], str]:
    """A batch item's required field: the ``type`` of the event inside ``msys``."""
    (event,) = item["msys"].values()
    return event, "type"


SAMPLES = Samples(
    provider="sparkpost",
    traffic_share=8,
    make_source=make_test_source,
    example_body=example_body,
    signed_request=unsigned_json_request,
    events=tuple(sparkpost.EVENT_TYPES),
    one_event_per_request=False,
    add_metadata=add_metadata,
    batch_items=json_array(_required_type),
)
