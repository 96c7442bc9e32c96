"""SparkPost webhooks: a JSON array of ``{"msys": {<event class>: {...event...}}}``.

SparkPost signs nothing: sources use basic auth or a bearer token (SparkPost's OAuth2 option
sends one), and a source with neither is refused unless ``allow_unauthenticated`` is set.
SparkPost's test "ping" is ``[]`` or ``[{"msys": {}}]``: valid, and yields no events. A
batch of ``relay_message`` items (an inbound relay webhook pointed at the tracking URL) is a
``ControlMessage`` (``inbound_message``): 200, no events.

Normalization of ``type``: ``injection`` -> queued, ``delivery`` -> delivered, ``delay`` ->
deferred, ``bounce`` and ``out_of_band`` -> bounced, ``policy_rejection``,
``generation_rejection`` and ``generation_failure`` -> dropped, ``spam_complaint`` ->
complained, ``open`` / ``initial_open`` / ``amp_open`` / ``amp_initial_open`` -> opened,
``click`` / ``amp_click`` -> clicked, ``list_unsubscribe`` / ``link_unsubscribe`` ->
unsubscribed; relay, A/B-test, SMS and other classes -> unknown. The bounce class follows
SparkPost's bounce classification table: 10, 30, 90 hard; the soft (20-24, 40, 70) and
block (50-54) categories soft; undetermined (1) and admin (25, 26, 80) undetermined. Classes
60 (Auto-Reply) and 100 (Challenge-Response) are not bounces: the mailbox exists and
answered, so such a bounce is ``auto_replied`` (never suppresses, never a bounce in stats).
The class's name is the ``reason``, ``raw_reason`` the diagnostic.
``initial_open`` (top pixel) and ``open`` (bottom pixel), and their AMP twins, are all
opens: with both kinds of tracking one reading sends two, which only the raw open count
shows; every open rate counts the first open per message and recipient.

Ids: ``event_id`` is the provider event id and dedup key. ``message_id`` is the
``transmission_id``: that is what SparkPost's send API (``POST /transmissions``) returns to
the sender; SparkPost's internal per-message ``message_id`` stays in ``raw`` only, since
metadata is reserved for what the sender attached (``rcpt_meta``). ``rcpt_tags`` are the
tags and ``campaign_id`` the campaign. ``raw`` is the array item (``{"msys": {...}}``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from handlers._batch import ItemNormalizer, normalize_batch, normalize_item
from handlers._common import (
    decode_json,
    epoch_to_utc,
    event_time,
    expect_list,
    expect_object,
    iso_to_utc,
    opt_object,
    opt_str,
    opt_time,
    recipient_at,
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

__all__ = ["ADAPTER", "SparkPostAdapter"]

EVENT_TYPES: dict[str, EventType] = {
    "injection": EventType.QUEUED,
    "delivery": EventType.DELIVERED,
    "delay": EventType.DEFERRED,
    "bounce": EventType.BOUNCED,
    "out_of_band": EventType.BOUNCED,
    "policy_rejection": EventType.DROPPED,
    "generation_rejection": EventType.DROPPED,
    "generation_failure": EventType.DROPPED,
    "spam_complaint": EventType.COMPLAINED,
    "open": EventType.OPENED,
    "initial_open": EventType.OPENED,
    "amp_open": EventType.OPENED,
    "amp_initial_open": EventType.OPENED,
    "click": EventType.CLICKED,
    "amp_click": EventType.CLICKED,
    "list_unsubscribe": EventType.UNSUBSCRIBED,
    "link_unsubscribe": EventType.UNSUBSCRIBED,
}

#: SparkPost bounce classification codes: (name, category)
BOUNCE_CLASS_TABLE: dict[str, tuple[str, BounceClass]] = {
    "1": ("Undetermined", BounceClass.UNDETERMINED),
    "10": ("Invalid Recipient", BounceClass.HARD),
    "20": ("Soft Bounce", BounceClass.SOFT),
    "21": ("DNS Failure", BounceClass.SOFT),
    "22": ("Mailbox Full", BounceClass.SOFT),
    "23": ("Too Large", BounceClass.SOFT),
    "24": ("Timeout", BounceClass.SOFT),
    "25": ("Admin Failure", BounceClass.UNDETERMINED),
    "26": ("Smart Send Suppression", BounceClass.UNDETERMINED),
    "30": ("Generic Bounce: No RCPT", BounceClass.HARD),
    "40": ("Generic Bounce", BounceClass.SOFT),
    "50": ("Mail Block", BounceClass.SOFT),
    "51": ("Spam Block", BounceClass.SOFT),
    "52": ("Spam Content", BounceClass.SOFT),
    "53": ("Prohibited Attachment", BounceClass.SOFT),
    "54": ("Relaying Denied", BounceClass.SOFT),
    "60": ("Auto-Reply", BounceClass.SOFT),  # -> auto_replied, see AUTO_REPLY_CLASSES
    "70": ("Transient Failure", BounceClass.SOFT),
    "80": ("Subscribe", BounceClass.UNDETERMINED),
    "90": ("Unsubscribe", BounceClass.HARD),
    "100": ("Challenge-Response", BounceClass.SOFT),  # -> auto_replied
}

#: bounce classes that are a mailbox answering, not a failure: vacation / out-of-office
#: auto-replies and challenge-response probes (the mailbox exists)
AUTO_REPLY_CLASSES = frozenset({"60", "100"})


def _is_relay_message(item: Any) -> bool:
    """An inbound-relay item (a received email SparkPost relays), not a tracking event."""
    if not isinstance(item, dict):
        return False
    msys = item.get("msys")
    return isinstance(msys, dict) and list(msys) == ["relay_message"]


def _timestamp(value: Any, field: str) -> datetime:
    """SparkPost sends epoch seconds as a string; accept a number or ISO 8601 too."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return epoch_to_utc(value, field)
    if isinstance(value, str) and value.replace(".", "", 1).isdigit():
        return epoch_to_utc(value, field)
    return iso_to_utc(value, field)


class SparkPostAdapter(UnsignedAdapter):
    """SparkPost's webhooks (unsigned: basic auth or bearer token)."""

    provider: ClassVar[str] = "sparkpost"

    def parse(
        self, request: WebhookRequest, source: SourceSpec, received_at: datetime
    ) -> ParseResult:
        items = expect_list(decode_json(request.body), "body")
        if items and all(_is_relay_message(item) for item in items):
            return ParseResult.non_tracking(ControlKind.INBOUND_MESSAGE, count=len(items))
        return normalize_batch(items, self._item_normalizer(source, received_at))

    def parse_item(self, item: Any, source: SourceSpec, received_at: datetime) -> list[EmailEvent]:
        return normalize_item(item, self._item_normalizer(source, received_at))

    def _item_normalizer(self, source: SourceSpec, received_at: datetime) -> ItemNormalizer:
        """One ``{"msys": {<event class>: {...}}}`` item: an event per class (none for a
        ping's empty ``msys``), or a PayloadError for the whole item."""

        def normalize(item: Any, path: str) -> list[EmailEvent]:
            msys = expect_object(expect_object(item, path).get("msys"), f"{path}.msys")
            events: list[EmailEvent] = []
            for event_class, payload in msys.items():
                event_path = f"{path}.msys.{event_class}"
                body = expect_object(payload, event_path)
                raw = {"msys": {event_class: body}}
                events.append(self._event(body, raw, event_path, source, received_at))
            return events

        return normalize

    def _event(
        self,
        event: dict[str, Any],
        raw: dict[str, Any],
        path: str,
        source: SourceSpec,
        received_at: datetime,
    ) -> EmailEvent:
        esp_event = req_str(event, "type", path)
        event_type = EVENT_TYPES.get(esp_event, EventType.UNKNOWN)
        bounce_class: BounceClass | None = None
        reason = opt_str(event, "reason")
        raw_reason = opt_str(event, "raw_reason")
        class_code = opt_str(event, "bounce_class")
        if class_code is not None:
            name, category = BOUNCE_CLASS_TABLE.get(
                class_code, (f"bounce class {class_code}", BounceClass.UNDETERMINED)
            )
            if event_type is EventType.BOUNCED and class_code in AUTO_REPLY_CLASSES:
                event_type = EventType.AUTO_REPLIED
            elif event_type is EventType.BOUNCED:
                bounce_class = category
            reason = name
        elif event_type is EventType.BOUNCED:
            bounce_class = BounceClass.UNDETERMINED
        diagnostic = raw_reason or opt_str(event, "reason") or opt_str(event, "error")
        smtp_status = smtp_status_from_text(diagnostic) or opt_str(event, "error_code")

        occurred_at, time_source = event_time(
            received_at, opt_time(event, "timestamp", path, _timestamp)
        )
        # rcpt_to is required for the event types SparkPost documents; raw_rcpt_to (the
        # address as the sender wrote it) wins when present
        rcpt_to = recipient_at(event, "rcpt_to", path, required=esp_event in EVENT_TYPES)
        event_id = opt_str(event, "event_id")
        return EmailEvent(
            provider=self.provider,
            source=source.name,
            event_type=event_type,
            occurred_at=occurred_at,
            received_at=received_at,
            recipient=canonical_address(opt_str(event, "raw_rcpt_to") or rcpt_to),
            message_id=opt_str(event, "transmission_id") or None,
            provider_event_id=event_id,
            dedup_key=(
                id_dedup_key(self.provider, event_id)
                if event_id
                else content_dedup_key(self.provider, raw)
            ),
            esp_event=esp_event,
            bounce_class=bounce_class,
            reason=reason or None,
            smtp_status=smtp_status,
            diagnostic=diagnostic or None,
            url=opt_str(event, "target_link_url"),
            user_agent=opt_str(event, "user_agent"),
            ip=opt_str(event, "ip_address"),
            campaign=opt_str(event, "campaign_id") or None,
            tags=tags_from(event.get("rcpt_tags")),
            metadata=opt_object(event, "rcpt_meta") or {},
            raw=raw,
            time_source=time_source,
        )


ADAPTER = SparkPostAdapter()
