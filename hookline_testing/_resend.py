"""Resend samples: one event per request (naming one or more recipients), signed by Svix
as Resend's webhooks are."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.base import SourceSpec, WebhookRequest
from handlers.resend import _EVENT_TYPES, svix_signature
from hookline_testing._samples import Samples

#: every event type Resend documents for emails and contacts
RESEND_EVENTS = (
    *_EVENT_TYPES,
    "email.received",
    "contact.created",
    "contact.updated",
    "contact.deleted",
    "domain.created",
    "domain.updated",
    "domain.deleted",
)
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def make_test_source(name: str = "test", **overrides: Any) -> tuple[SourceSpec, Any]:
    """A source with a fresh ``whsec_`` secret; the material is that secret (a string)."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")
    source = SourceSpec(provider="resend", name=name, signing_key=secret)
    return replace(source, **overrides), secret


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _example_data(event: str, *, seed: int, recipients: list[str], at: datetime) -> dict[str, Any]:
    if event.startswith("contact."):
        return {
            "id": f"e169aa45-1ecf-4183-9955-b1499d5701d{seed % 10}",
            "audience_id": "78261eea-8f8b-4381-83c6-79fa7120f1cf",
            "segment_ids": ["78261eea-8f8b-4381-83c6-79fa7120f1cf"],
            "created_at": _iso(at - timedelta(days=30)),
            "updated_at": _iso(at),
            "email": recipients[0],
            "first_name": "Steve",
            "last_name": "Wozniak",
            "unsubscribed": event == "contact.updated",
        }
    if event.startswith("domain."):
        return {
            "id": "d91cd9bd-1176-453e-8fc1-35364d380206",
            "name": "example.com",
            "status": "not_started",
            "created_at": _iso(at),
            "region": "us-east-1",
            "records": [],
        }
    data: dict[str, Any] = {
        "broadcast_id": f"8b146471-e88e-4322-86af-{seed:012x}",
        "created_at": _iso(at - timedelta(seconds=5)),
        "email_id": f"56761188-7520-42d8-8898-{seed:012x}",
        "from": "Acme <onboarding@example.com>",
        "to": recipients,
        "subject": "Sending this example",
        "tags": {"category": "confirm_email", "campaign": f"campaign-{seed}"},
    }
    if event == "email.bounced":
        data["bounce"] = {
            "message": (
                "The recipient's email provider sent a hard bounce message: "
                "550 5.1.1 The email account that you tried to reach does not exist."
            ),
            "subType": "General",
            "type": "Permanent",
        }
    elif event == "email.clicked":
        data["click"] = {
            "ipAddress": "122.115.53.11",
            "link": "https://resend.com",
            "timestamp": _iso(at),
            "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
        }
    elif event == "email.failed":
        data["failed"] = {"reason": "reached_daily_quota"}
    elif event == "email.suppressed":
        data["suppressed"] = {
            "message": "This recipient is on the suppression list because of a past bounce.",
            "type": "OnAccountSuppressionList",
        }
    return data


def example_body(
    count: int = 1, *, seed: int = 0, event: str | None = None, now: datetime | None = None
) -> bytes:
    """One Resend event (default ``email.delivered``) addressed to ``count`` recipients;
    ``now`` dates it (default: a fixed date in 2025, offset by the seed)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    kind = event or "email.delivered"
    if count > 1 and not kind.startswith("email."):
        raise ValueError(f"{kind} names one contact or domain, not {count} recipients")
    at = now if now is not None else _EPOCH + timedelta(minutes=seed)
    recipients = [f"recipient{i}.{seed}@example.com" for i in range(count)]
    body = {
        "type": kind,
        "created_at": _iso(at),
        "data": _example_data(kind, seed=seed, recipients=recipients, at=at),
    }
    return json.dumps(body).encode("utf-8")


def signed_request(
    source: SourceSpec,
    material: Any,
    body: bytes,
    *,
    now: datetime,
    url: str | None = None,
) -> WebhookRequest:
    """The POST Svix would send, signed at ``now``. ``svix-id`` is derived from the body,
    so the same body always carries the same id (as a Svix retry does)."""
    msg_id = "msg_" + hashlib.sha256(body).hexdigest()[:27]
    timestamp = str(int(now.timestamp()))
    signature = svix_signature(str(material), msg_id, timestamp, body)
    return WebhookRequest(
        method="POST",
        url=url or f"http://127.0.0.1:8000/webhooks/resend/{source.name}",
        headers={
            "content-type": "application/json",
            "user-agent": "Svix-Webhooks/1.0",
            "svix-id": msg_id,
            "svix-timestamp": timestamp,
            "svix-signature": f"v1,{signature}",
        },
        body=body,
    )


def add_metadata(body: bytes, key: str, value: str) -> bytes:
    """The email's ``tags``."""
    document = json.loads(body)
    document["data"]["tags"] = {key: value}
    return json.dumps(document).encode("utf-8")


SAMPLES = Samples(
    provider="resend",
    traffic_share=4,
    make_source=make_test_source,
    example_body=example_body,
    signed_request=signed_request,
    events=RESEND_EVENTS,
    one_event_per_request=False,
    add_metadata=add_metadata,
)
