"""Mailjet Event API webhooks (v2 "grouped" arrays, or one legacy bare object).

Mailjet signs nothing: sources use basic auth (credentials in the webhook URL) or a bearer
token, and a source with neither is refused unless ``allow_unauthenticated`` is set.

Normalization of ``event``: ``sent`` -> **delivered** (Mailjet sends it once the receiving
MTA accepted the message), ``open`` -> opened, ``click`` -> clicked, ``bounce`` -> bounced
(hard when ``hard_bounce`` is true, else soft; but a non-hard ``greylisted`` bounce is
deferred, since Mailjet documents that it retries those), ``blocked`` -> dropped
(Mailjet refused to send), ``spam`` -> complained, ``unsub`` -> unsubscribed. Mailjet's
``error`` is the reason and ``smtp_reply`` / ``comment`` the diagnostic.

``message_id`` is ``MessageID`` as a string (what the Send API returned), else
``Message_GUID``. ``Payload`` is decoded as JSON into the metadata when it is a JSON
object, else kept as ``{"payload": <string>}``; ``CustomID`` joins it. ``customcampaign``
is the campaign. Mailjet events carry no unique id: the dedup key hashes the event.

A Parse API payload (a received email: ``Recipient``, ``Headers``, ``Text-part`` ... and no
``event``) at the tracking URL is a ``ControlMessage`` (``inbound_message``).
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, ClassVar

import msgspec

from handlers._common import (
    decode_embedded_json,
    default_url,
    event_time,
    opt_str,
    opt_time,
    recipient_at,
    req_bool,
    req_str,
    smtp_status_from_text,
    transport_auth_headers,
)
from handlers._unsigned import UnsignedBatchAdapter
from handlers.addresses import canonical_address
from handlers.base import (
    ControlKind,
    ParseResult,
    SourceSpec,
    WebhookRequest,
)
from handlers.events import BounceClass, EmailEvent, EventType, content_dedup_key

__all__ = ["ADAPTER", "MailjetAdapter", "example_body", "make_test_source", "signed_request"]

#: fields of Mailjet's Parse API payload (a received email), never of a tracking event
PARSE_API_FIELDS = frozenset({"Text-part", "Html-part", "Headers", "Parts", "SpamAssassinScore"})

EVENT_TYPES: dict[str, EventType] = {
    "sent": EventType.DELIVERED,
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
    "bounce": EventType.BOUNCED,
    "blocked": EventType.DROPPED,
    "spam": EventType.COMPLAINED,
    "unsub": EventType.UNSUBSCRIBED,
}


def _metadata(raw: dict[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    payload = opt_str(raw, "Payload")
    if payload:
        decoded = decode_embedded_json(payload)
        if isinstance(decoded, dict):
            metadata.update(decoded)
        else:
            metadata["payload"] = payload
    custom_id = opt_str(raw, "CustomID")
    if custom_id:
        metadata["CustomID"] = custom_id
    return metadata


class MailjetAdapter(UnsignedBatchAdapter):
    """Mailjet's Event API webhooks (unsigned: basic auth or bearer token)."""

    provider: ClassVar[str] = "mailjet"

    def _non_tracking(self, decoded: Any) -> ParseResult | None:
        """Mailjet's Parse API payload (a received email: ``Recipient``, ``Headers``,
        ``Text-part`` ..., no ``event``) posted to the tracking URL."""
        if (
            isinstance(decoded, dict)
            and "event" not in decoded
            and "Recipient" in decoded
            and PARSE_API_FIELDS & decoded.keys()
        ):
            return ParseResult.non_tracking(ControlKind.INBOUND_MESSAGE)
        return None

    def _event(
        self, raw: dict[str, Any], path: str, source: SourceSpec, received_at: datetime
    ) -> EmailEvent:
        esp_event = req_str(raw, "event", path)
        event_type = EVENT_TYPES.get(esp_event, EventType.UNKNOWN)
        error = opt_str(raw, "error") or None
        bounce_class: BounceClass | None = None
        if event_type is EventType.BOUNCED:
            # it decides between suppressing and a soft bounce: unreadable, it is no event
            hard = req_bool(raw, "hard_bounce", path)
            if not hard and error == "greylisted":
                event_type = EventType.DEFERRED
            else:
                bounce_class = BounceClass.HARD if hard else BounceClass.SOFT
        diagnostic = opt_str(raw, "smtp_reply") or opt_str(raw, "comment") or None

        message_id = opt_str(raw, "MessageID")
        if not message_id or message_id == "0":
            message_id = opt_str(raw, "Message_GUID") or None
        occurred_at, time_source = event_time(received_at, opt_time(raw, "time", path))
        recipient = recipient_at(raw, "email", path, required=esp_event in EVENT_TYPES)
        return EmailEvent(
            provider=self.provider,
            source=source.name,
            event_type=event_type,
            occurred_at=occurred_at,
            received_at=received_at,
            recipient=canonical_address(recipient),
            message_id=message_id,
            provider_event_id=None,
            dedup_key=content_dedup_key(self.provider, raw),
            esp_event=esp_event,
            bounce_class=bounce_class,
            reason=error,
            smtp_status=smtp_status_from_text(diagnostic),
            diagnostic=diagnostic,
            url=opt_str(raw, "url") or None,
            user_agent=opt_str(raw, "agent") or None,
            ip=opt_str(raw, "ip") or None,
            campaign=opt_str(raw, "customcampaign") or None,
            tags=(),
            metadata=_metadata(raw),
            raw=raw,
            time_source=time_source,
        )


ADAPTER = MailjetAdapter()


# ---------------------------------------------------------------------------------------
# Test and load-test helpers: send traffic the way Mailjet does.
# ---------------------------------------------------------------------------------------

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


def signed_request(
    source: SourceSpec,
    material: Any,
    body: bytes,
    *,
    now: datetime,
    url: str | None = None,
) -> WebhookRequest:
    """The POST Mailjet would send: JSON body and the source's Authorization header."""
    del material, now  # Mailjet signs nothing; credentials come from the source
    return WebhookRequest(
        method="POST",
        url=url or default_url(source),
        headers={"content-type": "application/json", **transport_auth_headers(source)},
        body=body,
    )
