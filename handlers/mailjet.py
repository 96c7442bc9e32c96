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

from datetime import datetime
from typing import Any, ClassVar

from handlers._common import (
    decode_embedded_json,
    event_time,
    opt_str,
    opt_time,
    recipient_at,
    req_bool,
    req_str,
    smtp_status_from_text,
)
from handlers._unsigned import UnsignedBatchAdapter
from handlers.addresses import canonical_address
from handlers.base import (
    ControlKind,
    ParseResult,
    SourceSpec,
)
from handlers.events import BounceClass, EmailEvent, EventType, content_dedup_key

__all__ = ["ADAPTER", "MailjetAdapter"]

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
