"""Mandrill samples: ``mandrill_events`` form bodies signed with ``X-Mandrill-Signature``
over the webhook URL and the POST parameters, as Mandrill signs them."""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from handlers.base import SourceSpec, WebhookRequest
from handlers.mandrill import _EVENT_TYPES, EVENTS_FIELD, mandrill_signature
from hookline_testing._batch import BatchItems, Dumps, top_level
from hookline_testing._samples import Samples

#: every message event Mandrill documents (sync events carry ``type`` instead of ``event``)
MANDRILL_EVENTS = tuple(_EVENT_TYPES)


def make_test_source(name: str = "test", **overrides: Any) -> tuple[SourceSpec, Any]:
    """A source with a fresh webhook key; the material is that key (a string)."""
    key = secrets.token_urlsafe(16)
    source = SourceSpec(provider="mandrill", name=name, signing_key=key)
    return replace(source, **overrides), key


def _example_event(event: str, *, seed: int, index: int, base: int) -> dict[str, Any]:
    message_id = f"{seed:016x}{index:016x}"
    ts = base + index
    msg: dict[str, Any] = {
        "ts": ts - 60,
        "subject": "Your order has shipped",
        "email": f"recipient{index}.{seed}@example.com",
        "sender": "orders@example.com",
        "tags": ["shipping", "transactional"],
        "opens": [],
        "clicks": [],
        "state": "sent",
        "metadata": {"user_id": str(1000 + index), "campaign": f"campaign-{seed}"},
        "subaccount": None,
        "_id": message_id,
        "_version": f"v{seed}-{index}",
    }
    raw: dict[str, Any] = {"event": event, "msg": msg, "_id": message_id, "ts": ts}
    if event == "deferral":
        msg["state"] = "deferred"
        msg["smtp_events"] = [
            {
                "destination_ip": "192.0.2.25",
                "diag": "451 4.3.5 Temporarily unavailable, try again later.",
                "source_ip": "198.51.100.10",
                "ts": ts,
                "type": "deferred",
                "size": 0,
            }
        ]
    elif event in ("hard_bounce", "soft_bounce"):
        hard = event == "hard_bounce"
        msg["state"] = "bounced" if hard else "soft-bounced"
        msg["bounce_description"] = "bad_mailbox" if hard else "mailbox_full"
        msg["bgtools_code"] = 10 if hard else 22
        msg["diag"] = (
            "smtp;550 5.1.1 The email account that you tried to reach does not exist."
            if hard
            else "smtp;552 5.2.2 Over Quota"
        )
    elif event == "reject":
        msg["state"] = "rejected"
    elif event in ("open", "click"):
        msg["opens"] = [{"ts": ts}]
        raw["ip"] = "203.0.113.7"
        raw["location"] = {"country_short": "US", "country": "United States", "city": "Boston"}
        raw["user_agent"] = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Thunderbird/115.0"
        raw["user_agent_parsed"] = {"type": "Email Client", "ua_family": "Thunderbird"}
        if event == "click":
            msg["clicks"] = [{"ts": ts, "url": "https://example.com/orders/42"}]
            raw["url"] = "https://example.com/orders/42"
    elif event == "delivered":
        msg["smtp_events"] = [
            {
                "destination_ip": "192.0.2.25",
                "diag": "250 2.0.0 OK 1700000000 a1si123 - gsmtp",
                "source_ip": "198.51.100.10",
                "ts": ts,
                "type": "sent",
                "size": 4312,
            }
        ]
    return raw


def example_body(
    count: int = 1, *, seed: int = 0, event: str | None = None, now: datetime | None = None
) -> bytes:
    """A ``mandrill_events`` form body with ``count`` events of ``event`` (default
    ``delivered``), distinct per ``seed``; ``now`` dates them (default: a fixed date in
    November 2023, offset by the seed)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    kind = event or "delivered"
    base = int(now.timestamp()) if now is not None else 1_700_000_000 + seed * 1000
    batch = [_example_event(kind, seed=seed, index=i, base=base) for i in range(count)]
    return urlencode({EVENTS_FIELD: json.dumps(batch)}).encode("ascii")


def signed_request(
    source: SourceSpec,
    material: Any,
    body: bytes,
    *,
    now: datetime,
    url: str | None = None,
) -> WebhookRequest:
    """The POST Mandrill would send: form body and ``X-Mandrill-Signature`` (no timestamp:
    ``now`` is unused). The signed URL is ``source.url`` when set, else ``url``."""
    url = url or f"http://127.0.0.1:8000/webhooks/mandrill/{source.name}"
    params = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return WebhookRequest(
        method="POST",
        url=url,
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "user-agent": "Mandrill-Webhook/1.0",
            "x-mandrill-signature": mandrill_signature(str(material), source.url or url, params),
        },
        body=body,
    )


def add_metadata(body: bytes, key: str, value: str) -> bytes:
    """``msg.metadata`` of the (first) event, inside the ``mandrill_events`` form field."""
    fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    events = json.loads(fields[EVENTS_FIELD])
    events[0]["msg"]["metadata"] = {key: value}
    fields[EVENTS_FIELD] = json.dumps(events)
    return urlencode(fields).encode("ascii")


def _form_items(body: bytes) -> list[Any]:
    items = json.loads(dict(parse_qsl(body.decode("utf-8")))[EVENTS_FIELD])
    if not isinstance(items, list):
        raise ValueError(f"{EVENTS_FIELD} is not an array")
    return items


def _form_body(items: list[Any], dumps: Dumps = json.dumps) -> bytes:
    return urlencode({EVENTS_FIELD: dumps(items)}).encode("ascii")


SAMPLES = Samples(
    provider="mandrill",
    traffic_share=4,
    make_source=make_test_source,
    example_body=example_body,
    signed_request=signed_request,
    events=MANDRILL_EVENTS,
    one_event_per_request=False,
    add_metadata=add_metadata,
    batch_items=BatchItems(_form_items, _form_body, top_level("msg")),
)
