"""The normalized vocabulary every ESP adapter produces.

One ``EmailEvent`` per (event, recipient). Adapters never invent fields the ESP did not
give; ``raw`` keeps the ESP's own event verbatim so nothing is lost in translation.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime
from typing import Any

import msgspec

__all__ = [
    "BounceClass",
    "EmailEvent",
    "EventType",
    "TimeSource",
    "content_dedup_key",
    "id_dedup_key",
]


class EventType(enum.StrEnum):
    """What happened to one email for one recipient."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    OPENED = "opened"
    CLICKED = "clicked"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    RESUBSCRIBED = "resubscribed"
    #: an auto-reply (vacation / out-of-office) or a challenge-response probe that an ESP
    #: reports among its bounces: the mailbox exists and answered, so it is never a bounce
    #: and never suppresses or quarantines the address
    AUTO_REPLIED = "auto_replied"
    UNKNOWN = "unknown"


class BounceClass(enum.StrEnum):
    """Whether a bounce is permanent (hard), final-but-transient (soft) or unclear."""

    HARD = "hard"
    SOFT = "soft"
    UNDETERMINED = "undetermined"


class TimeSource(enum.StrEnum):
    """Where ``occurred_at`` came from, in the order adapters try them (issue #17)."""

    #: the event's own time, as the ESP reported it
    EVENT = "event"
    #: the event had none: the time of the request that carried it (a signed timestamp
    #: header, the SNS envelope's Timestamp, when the ESP sent the batch or the message)
    ENVELOPE = "envelope"
    #: neither: the time the gateway received the request
    RECEIVED = "received"


class EmailEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One normalized email event. ``raw`` is the ESP's event exactly as it was sent.

    Not tracked by the cyclic garbage collector (``gc=False``): an event only holds JSON
    data, which can never refer back to it, so there is no cycle to find, and a 100-event
    batch no longer adds a hundred objects to every young collection."""

    provider: str
    source: str
    event_type: EventType
    occurred_at: datetime
    received_at: datetime
    recipient: str | None
    message_id: str | None
    dedup_key: str
    provider_event_id: str | None = None
    esp_event: str | None = None
    bounce_class: BounceClass | None = None
    reason: str | None = None
    smtp_status: str | None = None
    diagnostic: str | None = None
    url: str | None = None
    user_agent: str | None = None
    ip: str | None = None
    machine_open: bool = False
    campaign: str | None = None
    tags: tuple[str, ...] = ()
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    raw: Any = None
    #: where ``occurred_at`` came from (``handlers._common.event_time`` picks it)
    time_source: TimeSource = TimeSource.EVENT


_canonical = msgspec.json.Encoder(order="sorted")


def id_dedup_key(provider: str, provider_event_id: str) -> str:
    """Dedup key for an event that carries the ESP's own unique id."""
    return f"{provider}:{provider_event_id}"


def content_dedup_key(provider: str, raw: Any, *extra: str) -> str:
    """Dedup key for an event without a unique id: SHA-256 of its canonical JSON form."""
    digest = hashlib.sha256(provider.encode())
    digest.update(b"\0")
    digest.update(_canonical.encode(raw))
    for part in extra:
        digest.update(b"\0")
        digest.update(part.encode())
    return f"{provider}:sha256:{digest.hexdigest()}"
