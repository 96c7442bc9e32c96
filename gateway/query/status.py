"""A message's status per recipient: the furthest state its events reached.

Precedence, highest first (docs/admin-api.md documents the same list)::

    complained > unsubscribed > clicked > opened > bounced > dropped
      > auto_replied > delivered > deferred > sent > queued > resubscribed > unknown

Why this order: a complaint or an unsubscribe is the recipient's last word on the message;
a click implies an open and an open implies the message arrived, so engagement outranks a
late or spurious bounce. Bounced and dropped are terminal failures and beat every
in-flight or success state of the delivery itself (a bounce after "delivered" means the
receiving server accepted it, then gave it back). Deferred is a temporary failure, beaten by
any final outcome. An auto-reply proves the message reached a mailbox that answered, so it
ranks just above delivered (and below every failure: it is no bounce). Resubscribed and
unknown say nothing about delivery, so they only show when nothing else happened.
"""

from __future__ import annotations

from collections.abc import Iterable

from handlers.events import EventType

__all__ = ["STATUS_PRECEDENCE", "furthest_status"]

#: highest first
STATUS_PRECEDENCE: tuple[EventType, ...] = (
    EventType.COMPLAINED,
    EventType.UNSUBSCRIBED,
    EventType.CLICKED,
    EventType.OPENED,
    EventType.BOUNCED,
    EventType.DROPPED,
    EventType.AUTO_REPLIED,
    EventType.DELIVERED,
    EventType.DEFERRED,
    EventType.SENT,
    EventType.QUEUED,
    EventType.RESUBSCRIBED,
    EventType.UNKNOWN,
)
_RANK = {event_type.value: rank for rank, event_type in enumerate(STATUS_PRECEDENCE)}


def furthest_status(event_types: Iterable[str]) -> str:
    """The highest-precedence event type among ``event_types`` (``unknown`` if none)."""
    best = len(STATUS_PRECEDENCE) - 1
    for event_type in event_types:
        best = min(best, _RANK.get(event_type, len(STATUS_PRECEDENCE) - 1))
    return STATUS_PRECEDENCE[best].value
