"""Resend webhooks, delivered and signed by Svix.

Headers ``svix-id``, ``svix-timestamp`` and ``svix-signature`` (a space-separated list of
``v1,<base64>`` entries: any match passes, which is how Svix rotates secrets). The
signature is ``base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))`` where the key is the
base64-decoded part of the ``whsec_...`` signing secret. Timestamps more than five minutes
away (or the source's replay window, if smaller) are refused: Svix re-signs every retry.

One event per request; ``data.to`` lists the recipients (one ``EmailEvent`` each). The Svix
message id is the same for every retry, so it is the event id (with the recipient when
there are several).

Time: the event's own (``data.click.timestamp`` ...), else the event's ``created_at``, else
the ``svix-timestamp`` of the delivery attempt, else the receipt time.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers._common import (
    decode_json,
    epoch_to_utc,
    event_time,
    expect_object,
    iso_to_utc,
    lenient,
    opt_bool,
    opt_list,
    opt_object,
    opt_str,
    opt_time,
    recipient_at,
    req_str,
    smtp_status_from_text,
)
from handlers.addresses import canonical_address
from handlers.base import (
    Adapter,
    AuthError,
    ControlKind,
    ParseResult,
    PayloadError,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
    check_replay_window,
    constant_time_equals,
    hmac_digest,
    parse_timestamp_header,
)
from handlers.events import BounceClass, EmailEvent, EventType, content_dedup_key, id_dedup_key

__all__ = [
    "ADAPTER",
    "ResendAdapter",
    "svix_signature",
]

#: Svix's own tolerance; a source may only narrow it
TOLERANCE_SECONDS = 300

_EVENT_TYPES = {
    "email.scheduled": EventType.QUEUED,
    "email.sent": EventType.SENT,
    "email.delivered": EventType.DELIVERED,
    "email.delivery_delayed": EventType.DEFERRED,
    "email.bounced": EventType.BOUNCED,
    "email.complained": EventType.COMPLAINED,
    "email.opened": EventType.OPENED,
    "email.clicked": EventType.CLICKED,
    "email.failed": EventType.DROPPED,
    "email.suppressed": EventType.DROPPED,
}
#: Resend's inbound-email events (a received email, not one the sender sent)
INBOUND_EVENTS = frozenset({"email.received"})
_BOUNCE_CLASSES = {"Permanent": BounceClass.HARD, "Transient": BounceClass.SOFT}


def _secret_bytes(signing_key: str) -> bytes:
    """The HMAC key inside a ``whsec_<base64>`` secret (the prefix is optional)."""
    try:
        return base64.b64decode(signing_key.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        raise AuthError("invalid", "configured signing_key is not a whsec_ secret") from None


def svix_signature(signing_key: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``v1`` signature (base64, without the ``v1,`` prefix) of one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac_digest(_secret_bytes(signing_key), signed)).decode("ascii")


def _header(request: WebhookRequest, name: str) -> str | None:
    """A Svix header, or its Standard Webhooks twin (``webhook-*``)."""
    return request.headers.get(f"svix-{name}") or request.headers.get(f"webhook-{name}")


class ResendAdapter(Adapter):
    """Resend: Svix HMAC-SHA256 signatures with a five-minute window."""

    provider = "resend"
    required_fields = ("signing_key",)

    def check_source(self, source: SourceSpec) -> None:
        if source.signing_key is not None:
            try:
                _secret_bytes(source.signing_key)
            except AuthError:
                raise ValueError("not a whsec_ secret (base64 after the prefix)") from None

    async def verify(
        self, request: WebhookRequest, source: SourceSpec, context: VerifyContext
    ) -> None:
        self.verify_transport_auth(request, source)
        msg_id = _header(request, "id")
        signatures = _header(request, "signature")
        if not msg_id or not signatures:
            raise AuthError("missing", "svix-id and svix-signature are required")
        timestamp = _header(request, "timestamp")
        signed_at = parse_timestamp_header(timestamp)
        window = min(TOLERANCE_SECONDS, source.replay_window_seconds)
        check_replay_window(signed_at, context.now, window)
        if not source.signing_key:
            raise AuthError("invalid", "no signing_key configured")
        expected = svix_signature(source.signing_key, msg_id, str(timestamp).strip(), request.body)
        matched = False
        for entry in signatures.split():
            version, _, value = entry.partition(",")
            if version == "v1" and constant_time_equals(value, expected):
                matched = True
        if not matched:
            raise AuthError("invalid")

    def parse(
        self, request: WebhookRequest, source: SourceSpec, received_at: datetime
    ) -> ParseResult:
        body = expect_object(decode_json(request.body), "body")
        esp_event = req_str(body, "type")
        data = expect_object(body.get("data"), "data")
        created_at = opt_time(body, "created_at", "", iso_to_utc)
        # the envelope's time (when Svix signed this attempt), for an event without its own
        signed_at = lenient(epoch_to_utc, _header(request, "timestamp"))
        msg_id = _header(request, "id")
        if esp_event in INBOUND_EVENTS:
            return ParseResult.non_tracking(ControlKind.INBOUND_MESSAGE, esp_event=esp_event)
        if esp_event.startswith("contact."):
            details = [_contact(esp_event, data)]
        elif esp_event.startswith("email."):
            details = _email(esp_event, data)
        else:
            details = [_Detail(EventType.UNKNOWN, None)]
        several = len(details) > 1
        tags = _tags(data.get("tags"))
        events = []
        for detail in details:
            event_id = f"{msg_id}:{detail.recipient}" if msg_id and several else msg_id
            occurred_at, time_source = event_time(
                received_at, detail.occurred_at or created_at, signed_at
            )
            events.append(
                EmailEvent(
                    provider=self.provider,
                    source=source.name,
                    event_type=detail.event_type,
                    occurred_at=occurred_at,
                    received_at=received_at,
                    recipient=canonical_address(detail.recipient),
                    message_id=opt_str(data, "email_id"),
                    dedup_key=(
                        id_dedup_key(self.provider, event_id)
                        if event_id
                        else content_dedup_key(
                            self.provider, body, canonical_address(detail.recipient) or ""
                        )
                    ),
                    provider_event_id=event_id,
                    esp_event=esp_event,
                    bounce_class=detail.bounce_class,
                    reason=detail.reason,
                    smtp_status=smtp_status_from_text(detail.diagnostic),
                    diagnostic=detail.diagnostic,
                    url=detail.url,
                    user_agent=detail.user_agent,
                    ip=detail.ip,
                    campaign=opt_str(data, "broadcast_id") or _text(tags.get("campaign")),
                    metadata=dict(tags),
                    raw=body,
                    time_source=time_source,
                )
            )
        return ParseResult(events=events)


@dataclass(slots=True)
class _Detail:
    """What a Resend event says about one recipient."""

    event_type: EventType
    recipient: str | None
    bounce_class: BounceClass | None = None
    reason: str | None = None
    diagnostic: str | None = None
    url: str | None = None
    user_agent: str | None = None
    ip: str | None = None
    occurred_at: datetime | None = None


def _recipients(data: dict[str, Any]) -> list[str]:
    to = data.get("to")
    if isinstance(to, str) and to:
        return [to]
    if not isinstance(to, list) or not to:
        raise PayloadError("data.to must be a non-empty array of addresses", "data.to")
    for index, address in enumerate(to):
        if not isinstance(address, str) or not address:
            raise PayloadError(f"data.to[{index}] must be a non-empty string", f"data.to[{index}]")
    return list(to)


def _email(esp_event: str, data: dict[str, Any]) -> list[_Detail]:
    event_type = _EVENT_TYPES.get(esp_event, EventType.UNKNOWN)
    if event_type is EventType.UNKNOWN:
        # an event Resend adds later: keep it, with whatever recipients it names
        to = opt_list(data, "to") or []
        addresses: list[str | None] = [a for a in to if isinstance(a, str) and a] or [None]
        return [_Detail(EventType.UNKNOWN, address) for address in addresses]
    req_str(data, "email_id", "data")
    fields: dict[str, Any] = {}
    if esp_event == "email.bounced":
        bounce = opt_object(data, "bounce") or {}
        bounce_type = opt_str(bounce, "type")
        fields["bounce_class"] = _BOUNCE_CLASSES.get(bounce_type or "", BounceClass.UNDETERMINED)
        fields["reason"] = (
            "/".join(p for p in (bounce_type, opt_str(bounce, "subType")) if p) or None
        )
        fields["diagnostic"] = opt_str(bounce, "message")
    elif esp_event == "email.failed":
        fields["reason"] = opt_str(opt_object(data, "failed") or {}, "reason")
    elif esp_event == "email.suppressed":
        suppressed = opt_object(data, "suppressed") or {}
        fields["reason"] = opt_str(suppressed, "type")
        fields["diagnostic"] = opt_str(suppressed, "message")
    elif esp_event in ("email.clicked", "email.opened"):
        key = "click" if esp_event == "email.clicked" else "open"
        action = opt_object(data, key) or {}
        fields["url"] = opt_str(action, "link")
        fields["ip"] = opt_str(action, "ipAddress")
        fields["user_agent"] = opt_str(action, "userAgent")
        fields["occurred_at"] = opt_time(action, "timestamp", f"data.{key}", iso_to_utc)
    return [_Detail(event_type, address, **fields) for address in _recipients(data)]


def _contact(esp_event: str, data: dict[str, Any]) -> _Detail:
    """contact.updated says whether the contact is unsubscribed; other contact.* are
    not email events."""
    unsubscribed = opt_bool(data, "unsubscribed")
    if esp_event == "contact.updated" and unsubscribed is not None:
        event_type = EventType.UNSUBSCRIBED if unsubscribed else EventType.RESUBSCRIBED
    else:
        event_type = EventType.UNKNOWN
    # an unsubscribe or resubscribe acts on the address: required for those
    required = event_type is not EventType.UNKNOWN
    return _Detail(event_type, recipient_at(data, "email", "data", required=required))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _tags(value: Any) -> dict[str, Any]:
    """Resend tags: an object, or a list of ``{"name": ..., "value": ...}``."""
    if isinstance(value, dict):
        return dict(value)
    tags: dict[str, Any] = {}
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                tags[item["name"]] = item.get("value")
    return tags


ADAPTER = ResendAdapter()
