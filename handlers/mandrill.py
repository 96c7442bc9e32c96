"""Mandrill (Mailchimp Transactional) webhooks.

Mandrill POSTs ``application/x-www-form-urlencoded`` with one field, ``mandrill_events``: a
JSON array of up to 1000 events. ``X-Mandrill-Signature`` is
``base64(HMAC-SHA1(webhook key, url + name1 + value1 + name2 + value2 ...))`` over the POST
parameters sorted by name, where ``url`` is the webhook URL exactly as configured in
Mandrill (``source.url`` when the gateway sits behind a proxy, else the request URL).
There is no timestamp, so no replay window: dedup keys absorb redeliveries.

Message events (``event``): send, deferral, hard_bounce, soft_bounce, open, click, spam,
unsub, reject, delivered. Sync events (``type``: whitelist / blacklist) are not events
about a sent email: stored as ``unknown``. A batch of ``inbound`` messages (an inbound
route pointed at the tracking URL) is a ``ControlMessage`` (``inbound_message``): 200, no
events.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from handlers._batch import ItemNormalizer, normalize_batch, normalize_item
from handlers._common import (
    decode_form,
    decode_json,
    event_time,
    expect_list,
    expect_object,
    opt_list,
    opt_object,
    opt_str,
    opt_time,
    recipient_at,
    smtp_status_from_text,
    tags_from,
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
    constant_time_equals,
    hmac_digest,
)
from handlers.events import BounceClass, EmailEvent, EventType, content_dedup_key

__all__ = [
    "ADAPTER",
    "MandrillAdapter",
    "mandrill_signature",
]

EVENTS_FIELD = "mandrill_events"

_EVENT_TYPES = {
    "send": EventType.SENT,
    "delivered": EventType.DELIVERED,
    "deferral": EventType.DEFERRED,
    "hard_bounce": EventType.BOUNCED,
    "soft_bounce": EventType.BOUNCED,
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
    "spam": EventType.COMPLAINED,
    "unsub": EventType.UNSUBSCRIBED,
    "reject": EventType.DROPPED,
}
_BOUNCE_CLASSES = {"hard_bounce": BounceClass.HARD, "soft_bounce": BounceClass.SOFT}


def mandrill_signature(key: str, url: str, params: dict[str, str]) -> str:
    """The ``X-Mandrill-Signature`` value for a POST of ``params`` to ``url``."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac_digest(key.encode(), signed.encode(), "sha1")).decode("ascii")


class MandrillAdapter(Adapter):
    """Mandrill batches: HMAC-SHA1 over URL and form fields, one event per array entry."""

    provider = "mandrill"
    content_types = ("application/x-www-form-urlencoded",)
    required_fields = ("signing_key",)

    async def verify(
        self, request: WebhookRequest, source: SourceSpec, context: VerifyContext
    ) -> None:
        self.verify_transport_auth(request, source)
        given = request.headers.get("x-mandrill-signature", "").strip()
        if not given:
            raise AuthError("missing", "X-Mandrill-Signature is required")
        if not source.signing_key:
            raise AuthError("invalid", "no signing_key configured")
        try:
            params = decode_form(request.body)
        except PayloadError:
            raise AuthError("invalid", "body is not a form the signature can cover") from None
        expected = mandrill_signature(source.signing_key, source.url or request.url, params)
        if not constant_time_equals(given, expected):
            raise AuthError("invalid")

    def parse(
        self, request: WebhookRequest, source: SourceSpec, received_at: datetime
    ) -> ParseResult:
        params = decode_form(request.body)
        if EVENTS_FIELD not in params:
            raise PayloadError(f"{EVENTS_FIELD} is required", EVENTS_FIELD)
        batch = expect_list(decode_json(params[EVENTS_FIELD], EVENTS_FIELD), EVENTS_FIELD)
        if batch and all(_is_inbound(item) for item in batch):
            return ParseResult.non_tracking(ControlKind.INBOUND_MESSAGE, count=len(batch))
        return normalize_batch(batch, _item_normalizer(source, received_at), EVENTS_FIELD)

    def parse_item(self, item: Any, source: SourceSpec, received_at: datetime) -> list[EmailEvent]:
        return normalize_item(item, _item_normalizer(source, received_at))


def _item_normalizer(source: SourceSpec, received_at: datetime) -> ItemNormalizer:
    """One entry of ``mandrill_events``: its event, or a PayloadError."""

    def normalize(item: Any, path: str) -> list[EmailEvent]:
        raw = expect_object(item, path)
        return [_normalize(raw, path=path, source=source, received_at=received_at)]

    return normalize


def _is_inbound(item: Any) -> bool:
    """An inbound-route message (a received email), not an event about a sent one."""
    return isinstance(item, dict) and item.get("event") == "inbound"


def _dedup_key(raw: dict[str, Any], esp_event: str, url: str | None) -> str:
    event_id = raw.get("_id")
    if isinstance(event_id, str) and event_id:
        identity = {"_id": event_id, "event": esp_event, "ts": raw.get("ts")}
        return content_dedup_key(ADAPTER.provider, identity, url or "")
    return content_dedup_key(ADAPTER.provider, raw)


def _normalize(
    raw: dict[str, Any], *, path: str, source: SourceSpec, received_at: datetime
) -> EmailEvent:
    esp_event = raw.get("event")
    if esp_event is None:
        sync_type = opt_str(raw, "type")
        if sync_type is None:
            raise PayloadError(f"{path}.event is required", f"{path}.event")
        return _sync_event(raw, sync_type, path=path, source=source, received_at=received_at)
    if not isinstance(esp_event, str) or not esp_event:
        raise PayloadError(f"{path}.event must be a non-empty string", f"{path}.event")
    event_type = _EVENT_TYPES.get(esp_event, EventType.UNKNOWN)
    known = event_type is not EventType.UNKNOWN
    msg = expect_object(raw.get("msg"), f"{path}.msg") if known else opt_object(raw, "msg") or {}
    recipient = recipient_at(msg, "email", f"{path}.msg", required=known)
    occurred_at, time_source = event_time(received_at, opt_time(raw, "ts", path))
    reason = opt_str(msg, "bounce_description")
    if esp_event in ("deferral", "delivered"):
        # the latest SMTP attempt is what happened now; msg.diag may be an older verdict
        diagnostic = _last_smtp_diag(msg) or opt_str(msg, "diag")
    else:
        diagnostic = opt_str(msg, "diag") or _last_smtp_diag(msg)
    if esp_event == "reject":
        reject = opt_object(msg, "reject") or {}
        reason = opt_str(reject, "reason") or opt_str(msg, "reject_reason") or reason
    url = opt_str(raw, "url") if esp_event == "click" else None
    metadata = opt_object(msg, "metadata") or {}
    return EmailEvent(
        provider=ADAPTER.provider,
        source=source.name,
        event_type=event_type,
        occurred_at=occurred_at,
        received_at=received_at,
        recipient=canonical_address(recipient),
        message_id=opt_str(msg, "_id") or opt_str(raw, "_id"),
        dedup_key=_dedup_key(raw, esp_event, url),
        esp_event=esp_event,
        bounce_class=_BOUNCE_CLASSES.get(esp_event),
        reason=reason,
        smtp_status=smtp_status_from_text(diagnostic),
        diagnostic=diagnostic,
        url=url,
        user_agent=opt_str(raw, "user_agent"),
        ip=opt_str(raw, "ip"),
        campaign=_campaign(metadata),
        tags=tags_from(msg.get("tags")),
        metadata=dict(metadata),
        raw=raw,
        time_source=time_source,
    )


def _campaign(metadata: dict[str, Any]) -> str | None:
    """Mandrill has no campaigns; a ``campaign`` metadata value is the convention."""
    value = metadata.get("campaign")
    return value if isinstance(value, str) and value else None


def _last_smtp_diag(msg: dict[str, Any]) -> str | None:
    attempts = [e for e in opt_list(msg, "smtp_events") or [] if isinstance(e, dict)]
    for attempt in reversed(attempts):
        diag = opt_str(attempt, "diag")
        if diag:
            return diag
    return None


def _sync_event(
    raw: dict[str, Any], sync_type: str, *, path: str, source: SourceSpec, received_at: datetime
) -> EmailEvent:
    """A whitelist/blacklist sync: not about one sent email, stored as ``unknown``."""
    occurred_at, time_source = event_time(received_at, opt_time(raw, "ts", path))
    reject = opt_object(raw, "reject") or opt_object(raw, "entry") or {}
    action = opt_str(raw, "action")
    return EmailEvent(
        provider=ADAPTER.provider,
        source=source.name,
        event_type=EventType.UNKNOWN,
        occurred_at=occurred_at,
        received_at=received_at,
        recipient=canonical_address(opt_str(reject, "email")),
        message_id=None,
        dedup_key=content_dedup_key(ADAPTER.provider, raw),
        esp_event=f"{sync_type}:{action}" if action else sync_type,
        reason=opt_str(reject, "reason"),
        diagnostic=opt_str(reject, "detail"),
        raw=raw,
        time_source=time_source,
    )


ADAPTER = MandrillAdapter()
