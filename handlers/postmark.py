"""Postmark webhooks: one JSON event per request, told apart by ``RecordType``.

Postmark signs nothing: sources use basic auth (credentials in the webhook URL) or a
bearer token (a custom header), and a source with neither is refused unless it sets
``allow_unauthenticated``.

Normalization by ``RecordType``: ``Delivery`` -> delivered, ``Open`` -> opened, ``Click``
-> clicked, ``SpamComplaint`` -> complained, ``SubscriptionChange`` -> unsubscribed when
``SuppressSending`` is true (``ManualSuppression``: the recipient or the sender asked),
resubscribed when false; with ``SuppressionReason`` HardBounce or SpamComplaint it is
Postmark's list hygiene echoing a Bounce / SpamComplaint record it sends anyway: unknown
(kept in the timeline, counted as neither an unsubscribe nor a second bounce).

``Bounce`` depends on its ``Type`` (see ``BOUNCE_TYPES``): HardBounce / BadEmailAddress /
ManuallyDeactivated are hard bounces; SoftBounce / Blocked / VirusNotification / DMARCPolicy
and SpamNotification (the receiving server's filter, not the recipient, called it spam)
soft; Unknown undetermined; Transient and DnsError deferred (Postmark keeps retrying);
Unsubscribe / Subscribe (list replies) unsubscribed /
resubscribed; Unconfirmed, SMTPApiError and TemplateRenderingFailed dropped (Postmark never
sent the message); AutoResponder and ChallengeVerification are a mailbox answering (vacation
responder, challenge-response), so auto_replied, never a bounce; AddressChange,
OpenRelayTest and InboundError are not delivery outcomes and stay unknown. The bounce
``Type`` is kept as ``reason`` and ``Details`` (the MTA response) as ``diagnostic``.

Postmark's inbound webhook (a received email, no ``RecordType``) posted to the tracking URL
is a ``ControlMessage`` (``inbound_message``): 200, no event.

``message_id`` is ``MessageID`` (what the send API returned); Bounce and SpamComplaint
records carry Postmark's ``ID``, used as ``provider_event_id`` and, with the record type,
as the dedup key; other records are deduplicated by content. ``Metadata`` becomes metadata
and ``Tag`` the only tag; ``MessageStream`` stays in ``raw``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from handlers._common import (
    decode_json,
    event_time,
    expect_object,
    iso_to_utc,
    opt_object,
    opt_str,
    opt_time,
    recipient_at,
    req_bool,
    req_str,
    smtp_status_from_text,
    tags_from,
)
from handlers._unsigned import UnsignedAdapter
from handlers.addresses import canonical_address
from handlers.base import (
    ControlKind,
    ParseResult,
    SourceSpec,
    WebhookRequest,
)
from handlers.events import (
    BounceClass,
    EmailEvent,
    EventType,
    content_dedup_key,
    id_dedup_key,
)

__all__ = ["ADAPTER", "PostmarkAdapter"]

RECORD_TYPES: dict[str, EventType] = {
    "Delivery": EventType.DELIVERED,
    "Bounce": EventType.BOUNCED,
    "SpamComplaint": EventType.COMPLAINED,
    "Open": EventType.OPENED,
    "Click": EventType.CLICKED,
    "SubscriptionChange": EventType.UNSUBSCRIBED,
}

#: Postmark bounce ``Type`` -> (event type, bounce class)
BOUNCE_TYPES: dict[str, tuple[EventType, BounceClass | None]] = {
    "HardBounce": (EventType.BOUNCED, BounceClass.HARD),
    "BadEmailAddress": (EventType.BOUNCED, BounceClass.HARD),
    "ManuallyDeactivated": (EventType.BOUNCED, BounceClass.HARD),
    "SoftBounce": (EventType.BOUNCED, BounceClass.SOFT),
    "Blocked": (EventType.BOUNCED, BounceClass.SOFT),
    "VirusNotification": (EventType.BOUNCED, BounceClass.SOFT),
    "DMARCPolicy": (EventType.BOUNCED, BounceClass.SOFT),
    "Unknown": (EventType.BOUNCED, BounceClass.UNDETERMINED),
    "Transient": (EventType.DEFERRED, None),
    "DnsError": (EventType.DEFERRED, None),
    # TypeCode 512: the receiving server or its filter blocked the message or classed it as
    # spam; the recipient did not complain (that is SpamComplaint, 100001)
    "SpamNotification": (EventType.BOUNCED, BounceClass.SOFT),
    "SpamComplaint": (EventType.COMPLAINED, None),
    "Unsubscribe": (EventType.UNSUBSCRIBED, None),
    "Subscribe": (EventType.RESUBSCRIBED, None),
    "Unconfirmed": (EventType.DROPPED, None),
    "SMTPApiError": (EventType.DROPPED, None),
    "TemplateRenderingFailed": (EventType.DROPPED, None),
    "AutoResponder": (EventType.AUTO_REPLIED, None),
    "AddressChange": (EventType.UNKNOWN, None),
    "ChallengeVerification": (EventType.AUTO_REPLIED, None),
    "OpenRelayTest": (EventType.UNKNOWN, None),
    "InboundError": (EventType.UNKNOWN, None),
}

#: SubscriptionChange reasons that echo an outcome Postmark reports as its own record
#: (Bounce, SpamComplaint): neither an unsubscribe nor a second bounce or complaint
ECHO_SUPPRESSION_REASONS = frozenset({"HardBounce", "SpamComplaint"})

#: where each record type keeps its time and its recipient
TIME_FIELDS = ("DeliveredAt", "BouncedAt", "ReceivedAt", "ChangedAt")
RECIPIENT_FIELDS = ("Recipient", "Email")
#: record types whose ``ID`` is Postmark's unique bounce id
ID_RECORD_TYPES = frozenset({"Bounce", "SpamComplaint"})


def _is_inbound(raw: dict[str, Any]) -> bool:
    """Postmark's inbound webhook (a received email: no ``RecordType``, ``FromFull`` /
    ``OriginalRecipient``, stream ``inbound``), posted to the tracking URL by mistake."""
    record_type = raw.get("RecordType")
    if record_type == "Inbound":
        return True
    return record_type is None and (
        raw.get("MessageStream") == "inbound" or ("FromFull" in raw and "ToFull" in raw)
    )


class PostmarkAdapter(UnsignedAdapter):
    """Postmark's webhooks (unsigned: basic auth or bearer token)."""

    provider: ClassVar[str] = "postmark"

    def parse(
        self, request: WebhookRequest, source: SourceSpec, received_at: datetime
    ) -> ParseResult:
        raw = expect_object(decode_json(request.body), "body")
        if _is_inbound(raw):
            return ParseResult.non_tracking(ControlKind.INBOUND_MESSAGE)
        return ParseResult(events=[self._event(raw, source, received_at)])

    def _event(self, raw: dict[str, Any], source: SourceSpec, received_at: datetime) -> EmailEvent:
        record_type = req_str(raw, "RecordType")
        event_type = RECORD_TYPES.get(record_type, EventType.UNKNOWN)
        bounce_class: BounceClass | None = None
        reason: str | None = None
        diagnostic: str | None = None
        if record_type == "Bounce":
            bounce_type = opt_str(raw, "Type")
            event_type, bounce_class = BOUNCE_TYPES.get(
                bounce_type or "", (EventType.BOUNCED, BounceClass.UNDETERMINED)
            )
            if event_type is not EventType.BOUNCED:
                bounce_class = None
            reason = bounce_type
            diagnostic = opt_str(raw, "Details") or opt_str(raw, "Description")
        elif record_type == "SpamComplaint":
            reason = opt_str(raw, "Type")
            diagnostic = opt_str(raw, "Details") or None
        elif record_type == "SubscriptionChange":
            reason = opt_str(raw, "SuppressionReason")
            # it decides the event: unreadable, it is no event (never a resubscribe)
            if not req_bool(raw, "SuppressSending"):
                event_type = EventType.RESUBSCRIBED
            elif reason in ECHO_SUPPRESSION_REASONS:
                # Postmark deactivating the address after a hard bounce or a complaint it
                # already reported as its own Bounce / SpamComplaint record: no unsubscribe
                event_type = EventType.UNKNOWN
        elif record_type == "Delivery":
            diagnostic = opt_str(raw, "Details") or None

        stamp = next((field for field in TIME_FIELDS if raw.get(field) is not None), None)
        occurred_at, time_source = event_time(
            received_at, opt_time(raw, stamp, "", iso_to_utc) if stamp else None
        )
        # the first recipient field present; required for the record types Postmark documents
        recipient_field = next(
            (field for field in RECIPIENT_FIELDS if raw.get(field) is not None),
            RECIPIENT_FIELDS[0],
        )
        recipient = recipient_at(raw, recipient_field, "", required=record_type in RECORD_TYPES)

        event_id = opt_str(raw, "ID") if record_type in ID_RECORD_TYPES else None
        geo = opt_object(raw, "Geo") or {}
        metadata = opt_object(raw, "Metadata") or {}
        return EmailEvent(
            provider=self.provider,
            source=source.name,
            event_type=event_type,
            occurred_at=occurred_at,
            received_at=received_at,
            recipient=canonical_address(recipient),
            message_id=opt_str(raw, "MessageID") or None,
            provider_event_id=event_id,
            dedup_key=(
                id_dedup_key(self.provider, f"{record_type}:{event_id}")
                if event_id
                else content_dedup_key(self.provider, raw)
            ),
            esp_event=record_type,
            bounce_class=bounce_class,
            reason=reason or None,
            smtp_status=smtp_status_from_text(diagnostic),
            diagnostic=diagnostic,
            url=opt_str(raw, "OriginalLink"),
            user_agent=opt_str(raw, "UserAgent") or None,
            ip=opt_str(geo, "IP") or None,
            campaign=None,
            tags=tags_from(raw.get("Tag")),
            metadata=metadata,
            raw=raw,
            time_source=time_source,
        )


ADAPTER = PostmarkAdapter()
