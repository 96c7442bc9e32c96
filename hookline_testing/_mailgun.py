"""Mailgun samples: one JSON event per request with the HMAC signature block in the body,
signed as Mailgun signs it."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import msgspec

from handlers import mailgun
from handlers.base import SourceSpec, WebhookRequest
from handlers.mailgun import ED, sign
from hookline_testing._http import default_url
from hookline_testing._samples import Samples

_EXAMPLE_EXTRA: dict[str, dict[str, Any]] = {
    "delivered": {
        "delivery-status": {"code": 250, "message": "OK", "description": "", "attempt-no": 1}
    },
    "failed": {
        "severity": "permanent",
        "reason": "bounce",
        "delivery-status": {
            "code": 550,
            "message": "5.1.1 The email account that you tried to reach does not exist.",
            "description": "",
            "attempt-no": 1,
        },
    },
    "opened": {
        "ip": "203.0.113.9",
        "client-info": {"user-agent": "Mozilla/5.0", "client-type": "browser", "bot": ""},
    },
    "clicked": {
        "ip": "203.0.113.9",
        "url": "https://example.com/a",
        "client-info": {"user-agent": "Mozilla/5.0", "client-type": "browser", "bot": ""},
    },
}


def make_test_source(name: str = "test", **overrides: Any) -> tuple[SourceSpec, Any]:
    """A SourceSpec with a fresh webhook signing key; the material is that key."""
    fields: dict[str, Any] = {"signing_key": secrets.token_hex(16)}
    fields.update(overrides)
    source = SourceSpec(provider="mailgun", name=name, **fields)
    return source, source.signing_key


def example_body(
    count: int = 1, *, seed: int = 0, event: str | None = None, now: datetime | None = None
) -> bytes:
    """One Mailgun event (default ``delivered``); Mailgun never batches, so count must be 1.

    The signature block is a placeholder: ``signed_request`` signs it afresh. ``now`` dates
    the event (default: a fixed date in November 2023, offset by the seed)."""
    if count != 1:
        raise ValueError("Mailgun sends exactly one event per request")
    event_name = event or "delivered"
    data: dict[str, Any] = {
        "id": f"evt-{seed:016x}",
        "event": event_name,
        "timestamp": now.timestamp() if now is not None else 1700000000.123456 + seed,
        "log-level": "info",
        "recipient": f"user{seed}@example.com",
        "recipient-domain": "example.com",
        "tags": ["transactional"],
        "campaigns": [],
        "user-variables": {"order_id": f"order-{seed}"},
        "flags": {"is-routed": False, "is-authenticated": True, "is-test-mode": False},
        "envelope": {"sender": "bounce@mg.example.org", "transport": "smtp"},
        "message": {
            "headers": {
                "to": f"user{seed}@example.com",
                "message-id": f"20231114221320.{seed}.ABCDEF@mg.example.org",
                "from": "Example <noreply@mg.example.org>",
                "subject": "Your receipt",
            },
            "attachments": [],
            "size": 4242,
        },
    }
    data.update(_EXAMPLE_EXTRA.get(event_name, {}))
    body = {
        "signature": {"timestamp": "1700000000", "token": "0" * 50, "signature": "0" * 64},
        ED: data,
    }
    return msgspec.json.encode(body)


def signed_request(
    source: SourceSpec,
    material: Any,
    body: bytes,
    *,
    now: datetime,
    url: str | None = None,
) -> WebhookRequest:
    """The POST Mailgun would send: ``body`` with a freshly signed signature block."""
    if not isinstance(material, str):
        raise TypeError("material must be the signing key from make_test_source")
    decoded = msgspec.json.decode(body)
    if not isinstance(decoded, dict):
        raise ValueError("a Mailgun body is a JSON object")
    timestamp = str(int(now.timestamp()))
    token = secrets.token_hex(25)
    decoded["signature"] = {
        "timestamp": timestamp,
        "token": token,
        "signature": sign(material, timestamp, token),
    }
    return WebhookRequest(
        method="POST",
        url=url or default_url(source),
        headers={"content-type": "application/json"},
        body=msgspec.json.encode(decoded),
    )


def add_metadata(body: bytes, key: str, value: str) -> bytes:
    """``user-variables`` of the event."""
    document = msgspec.json.decode(body)
    document[ED]["user-variables"] = {key: value}
    return msgspec.json.encode(document)


SAMPLES = Samples(
    provider="mailgun",
    traffic_share=15,
    make_source=make_test_source,
    example_body=example_body,
    signed_request=signed_request,
    events=tuple(mailgun.EVENT_TYPES),
    one_event_per_request=True,
    add_metadata=add_metadata,
)
