"""Brevo (ex-Sendinblue) transactional email webhooks: one JSON object, or an array when
the webhook is created with ``batched: true``.

Brevo signs nothing: sources use basic auth (credentials in the URL or Brevo's ``auth``
setting) or a bearer token, and a source with neither is refused unless
``allow_unauthenticated`` is set.

Normalization of ``event``: ``request`` (and its alias ``sent``) -> queued, ``delivered``,
``deferred``, ``soft_bounce`` -> bounced soft, ``hard_bounce`` -> bounced hard, ``blocked``,
``invalid_email`` / ``invalid`` and ``error`` -> dropped (Brevo did not send the message:
``error`` is a failure on Brevo's side before delivery, so it counts against neither the
address nor the bounce rate), ``spam`` / ``complaint`` -> complained, ``unsubscribed`` ->
unsubscribed (``unsubscribe``, the marketing webhooks' spelling, too; camelCase spellings
such as ``hardBounce`` / ``uniqueOpened`` / ``invalidEmail`` map like their snake_case
names), ``opened`` / ``unique_opened`` -> opened, ``proxy_open`` /
``unique_proxy_open`` -> opened with ``machine_open`` (a privacy-proxy open, e.g. Apple
MPP), ``click`` -> clicked.

Time: ``ts_epoch`` (milliseconds, UTC), else ``ts_event`` (seconds, UTC), else the
envelope's ``s_epoch`` (when the message was sent, milliseconds), else the receipt time;
``date`` and ``ts`` follow the account's time zone and are ignored. ``message_id`` is ``message-id``
without angle brackets. ``X-Mailin-custom`` (a free-form header) is kept verbatim in the
metadata under ``x-mailin-custom`` and, when it is a JSON object or ``k:v|k2:v2`` pairs,
its keys are merged in too. ``tags`` (or the single ``tag``) are the tags. Brevo's ``id``
is the webhook's id, not the event's: the dedup key hashes the event.

Brevo's inbound parsing webhook (``{"items": [...]}``, received emails) at the tracking URL
is a ``ControlMessage`` (``inbound_message``): 200, no events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from handlers._common import (
    decode_embedded_json,
    epoch_to_utc,
    event_time,
    lenient,
    opt_str,
    opt_time,
    recipient_at,
    req_str,
    smtp_status_from_text,
    strip_angle_brackets,
    tags_from,
)
from handlers._unsigned import UnsignedBatchAdapter
from handlers.addresses import canonical_address
from handlers.base import (
    ControlKind,
    ParseResult,
    PayloadError,
    SourceSpec,
)
from handlers.events import (
    BounceClass,
    EmailEvent,
    EventType,
    TimeSource,
    content_dedup_key,
)

__all__ = ["ADAPTER", "BrevoAdapter"]

EVENT_TYPES: dict[str, tuple[EventType, BounceClass | None, bool]] = {
    # event: (type, bounce class, machine open)
    "request": (EventType.QUEUED, None, False),
    "sent": (EventType.QUEUED, None, False),
    "delivered": (EventType.DELIVERED, None, False),
    "deferred": (EventType.DEFERRED, None, False),
    "soft_bounce": (EventType.BOUNCED, BounceClass.SOFT, False),
    "hard_bounce": (EventType.BOUNCED, BounceClass.HARD, False),
    "blocked": (EventType.DROPPED, None, False),
    "invalid_email": (EventType.DROPPED, None, False),
    "invalid": (EventType.DROPPED, None, False),
    "error": (EventType.DROPPED, None, False),
    "spam": (EventType.COMPLAINED, None, False),
    "complaint": (EventType.COMPLAINED, None, False),
    "unsubscribed": (EventType.UNSUBSCRIBED, None, False),
    "unsubscribe": (EventType.UNSUBSCRIBED, None, False),  # marketing webhooks' spelling
    "opened": (EventType.OPENED, None, False),
    "unique_opened": (EventType.OPENED, None, False),
    "proxy_open": (EventType.OPENED, None, True),
    "unique_proxy_open": (EventType.OPENED, None, True),
    "click": (EventType.CLICKED, None, False),
}

#: ``ts_epoch`` is documented in milliseconds; values below this are seconds (old docs)
_MILLISECONDS_THRESHOLD = 100_000_000_000


def _snake_case(name: str) -> str:
    """Brevo's camelCase spellings of its event names (``hardBounce``, ``uniqueOpened``,
    ``invalidEmail``: the names its webhook API and some payloads use) as snake_case."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _millis_or_seconds(value: Any, field: str) -> datetime:
    """``ts_epoch`` / ``s_epoch``: a number of milliseconds (seconds in Brevo's old docs)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{field} must be a number of milliseconds", field)
    return epoch_to_utc(value, field, milliseconds=abs(value) >= _MILLISECONDS_THRESHOLD)


def _occurred_at(
    raw: dict[str, Any], path: str, received_at: datetime
) -> tuple[datetime, TimeSource]:
    """``ts_epoch``, else ``ts_event`` (the event's), else ``s_epoch`` (the envelope's: when
    Brevo sent the message), else the receipt time."""
    occurred = opt_time(raw, "ts_epoch", path, _millis_or_seconds)
    if occurred is None:
        occurred = opt_time(raw, "ts_event", path)
    return event_time(received_at, occurred, lenient(_millis_or_seconds, raw.get("s_epoch")))


def _metadata(raw: dict[str, Any]) -> dict[str, Any]:
    value = raw.get("X-Mailin-custom")
    if isinstance(value, dict):
        return dict(value)
    if not isinstance(value, str) or not value:
        return {}
    metadata: dict[str, Any] = {"x-mailin-custom": value}
    decoded = decode_embedded_json(value)
    if isinstance(decoded, dict):
        metadata.update(decoded)
    elif ":" in value:
        for pair in value.split("|"):
            key, sep, item = pair.partition(":")
            if sep and key.strip():
                metadata[key.strip()] = item.strip()
    return metadata


class BrevoAdapter(UnsignedBatchAdapter):
    """Brevo's transactional webhooks (unsigned: basic auth or bearer token)."""

    provider: ClassVar[str] = "brevo"

    def _non_tracking(self, decoded: Any) -> ParseResult | None:
        """Brevo's inbound parsing webhook (``{"items": [<received email>...]}``)."""
        if isinstance(decoded, dict) and "event" not in decoded:
            items = decoded.get("items")
            if isinstance(items, list) and items:
                return ParseResult.non_tracking(ControlKind.INBOUND_MESSAGE, count=len(items))
        return None

    def _event(
        self, raw: dict[str, Any], path: str, source: SourceSpec, received_at: datetime
    ) -> EmailEvent:
        esp_event = req_str(raw, "event", path)
        mapped = EVENT_TYPES.get(esp_event) or EVENT_TYPES.get(_snake_case(esp_event))
        event_type, bounce_class, machine_open = mapped or (EventType.UNKNOWN, None, False)
        reason = opt_str(raw, "reason") or None
        tags_value = raw.get("tags")
        tags = tags_from(tags_value if tags_value is not None else raw.get("tag"))
        occurred_at, time_source = _occurred_at(raw, path, received_at)
        recipient = recipient_at(raw, "email", path, required=mapped is not None)
        return EmailEvent(
            provider=self.provider,
            source=source.name,
            event_type=event_type,
            occurred_at=occurred_at,
            received_at=received_at,
            recipient=canonical_address(recipient),
            message_id=strip_angle_brackets(opt_str(raw, "message-id")),
            provider_event_id=None,
            dedup_key=content_dedup_key(self.provider, raw),
            esp_event=esp_event,
            bounce_class=bounce_class,
            reason=reason,
            smtp_status=smtp_status_from_text(reason),
            diagnostic=None,
            url=opt_str(raw, "link") or None,
            user_agent=opt_str(raw, "user_agent") or None,
            ip=opt_str(raw, "ip") or None,
            machine_open=machine_open,
            campaign=opt_str(raw, "campaign name") or opt_str(raw, "camp_id"),
            tags=tags,
            metadata=_metadata(raw),
            raw=raw,
            time_source=time_source,
        )


ADAPTER = BrevoAdapter()
