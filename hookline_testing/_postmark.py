"""Postmark samples: one record per request, basic auth in the URL (Postmark signs
nothing)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import msgspec

from handlers import postmark
from handlers.base import SourceSpec
from hookline_testing._http import unsigned_json_request
from hookline_testing._samples import Samples


def make_test_source(name: str = "test", **overrides: Any) -> tuple[SourceSpec, Any]:
    """A SourceSpec with fresh basic-auth credentials; the material is ``user:password``."""
    fields: dict[str, Any] = {"basic_auth": f"postmark:{secrets.token_urlsafe(18)}"}
    fields.update(overrides)
    source = SourceSpec(provider="postmark", name=name, **fields)
    return source, source.basic_auth


def example_body(
    count: int = 1, *, seed: int = 0, event: str | None = None, now: datetime | None = None
) -> bytes:
    """One Postmark record (``event`` = RecordType, default ``Delivery``; ``Bounce`` is a
    HardBounce). Postmark never batches, so count must be 1. ``now`` dates the record
    (default: a fixed date in November 2023)."""
    if count != 1:
        raise ValueError("Postmark sends exactly one event per request")
    record_type = event or "Delivery"
    recipient = f"user{seed}@example.com"
    at = (now or datetime(2023, 11, 14, 22, 13, seed % 60, tzinfo=UTC)).astimezone(UTC)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    message_id = f"{seed:08x}-0000-4000-8000-{seed:012x}"
    record: dict[str, Any] = {
        "RecordType": record_type,
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Tag": "welcome",
        "Metadata": {"order_id": f"order-{seed}"},
    }
    if record_type in ("Bounce", "SpamComplaint"):
        record.update(
            {
                "ID": 4323372036854775807 + seed,
                "Type": "HardBounce" if record_type == "Bounce" else "SpamComplaint",
                "TypeCode": 1 if record_type == "Bounce" else 512,
                "Email": recipient,
                "BouncedAt": stamp if now is not None else "2023-11-14T22:13:20Z",
                "Details": "smtp;550 5.1.1 The email account does not exist",
                "Inactive": True,
                "CanActivate": True,
            }
        )
    elif record_type == "SubscriptionChange":
        record.update(
            {
                "Recipient": recipient,
                "ChangedAt": stamp,
                "Origin": "Recipient",
                "SuppressSending": True,
                "SuppressionReason": "ManualSuppression",
            }
        )
    else:
        record.update({"Recipient": recipient})
        record["DeliveredAt" if record_type == "Delivery" else "ReceivedAt"] = stamp
        if record_type == "Delivery":
            record["Details"] = f"Test delivery webhook details {seed}"
    return msgspec.json.encode(record)


def add_metadata(body: bytes, key: str, value: str) -> bytes:
    """The record's ``Metadata``."""
    record = msgspec.json.decode(body)
    record["Metadata"] = {key: value}
    return msgspec.json.encode(record)


SAMPLES = Samples(
    provider="postmark",
    traffic_share=10,
    make_source=make_test_source,
    example_body=example_body,
    signed_request=unsigned_json_request,
    events=tuple(postmark.RECORD_TYPES),
    one_event_per_request=True,
    add_metadata=add_metadata,
)
