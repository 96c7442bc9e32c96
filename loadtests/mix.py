"""What load-test traffic contains: which event types, in which proportions, per provider.

The weight table is expressed in Hookline's normalized vocabulary (``EventType``) so one
``delivered=60,opened=20`` mix means the same thing for every ESP; ``EVENT_NAMES`` maps each
normalized type to the ESP's own event name that the adapter's ``example_body`` builds.
A type a provider cannot express is left out of that provider's mix, and the remaining
weights are renormalized.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass

from handlers.events import EventType

__all__ = [
    "DEFAULT_WEIGHTS",
    "EVENT_NAMES",
    "MAX_BATCH_SIZE",
    "SINGLE_EVENT_PROVIDERS",
    "EventMix",
    "events_per_request",
    "parse_weights",
]

_D = EventType.DELIVERED
_O = EventType.OPENED
_C = EventType.CLICKED
_DF = EventType.DEFERRED
_B = EventType.BOUNCED
_DR = EventType.DROPPED
_CO = EventType.COMPLAINED
_U = EventType.UNSUBSCRIBED

#: normalized type -> the ESP's event name its ``example_body(event=...)`` accepts
EVENT_NAMES: Mapping[str, Mapping[EventType, str]] = {
    "sendgrid": {
        _D: "delivered",
        _O: "open",
        _C: "click",
        _DF: "deferred",
        _B: "bounce",
        _DR: "dropped",
        _CO: "spamreport",
        _U: "unsubscribe",
    },
    "mailgun": {
        _D: "delivered",
        _O: "opened",
        _C: "clicked",
        _B: "failed",
        _DR: "rejected",
        _CO: "complained",
        _U: "unsubscribed",
    },
    "postmark": {_D: "Delivery", _O: "Open", _C: "Click", _B: "Bounce", _CO: "SpamComplaint"},
    "ses": {
        _D: "Delivery",
        _O: "Open",
        _C: "Click",
        _DF: "DeliveryDelay",
        _B: "Bounce",
        _DR: "Reject",
        _CO: "Complaint",
        _U: "Subscription",
    },
    "sparkpost": {
        _D: "delivery",
        _O: "open",
        _C: "click",
        _DF: "delay",
        _B: "bounce",
        _DR: "policy_rejection",
        _CO: "spam_complaint",
        _U: "list_unsubscribe",
    },
    "mailjet": {
        _D: "sent",
        _O: "open",
        _C: "click",
        _B: "bounce",
        _DR: "blocked",
        _CO: "spam",
        _U: "unsub",
    },
    "mandrill": {
        _D: "delivered",
        _O: "open",
        _C: "click",
        _DF: "deferral",
        _B: "hard_bounce",
        _DR: "reject",
        _CO: "spam",
        _U: "unsub",
    },
    "brevo": {
        _D: "delivered",
        _O: "opened",
        _C: "click",
        _DF: "deferred",
        _B: "hard_bounce",
        _DR: "blocked",
        _CO: "spam",
        _U: "unsubscribed",
    },
    "resend": {
        _D: "email.delivered",
        _O: "email.opened",
        _C: "email.clicked",
        _DF: "email.delivery_delayed",
        _B: "email.bounced",
        _DR: "email.failed",
        _CO: "email.complained",
    },
    "postal": {
        _D: "MessageSent",
        _O: "MessageLoaded",
        _C: "MessageLinkClicked",
        _DF: "MessageDelayed",
        _B: "MessageDeliveryFailed",
        # MessageHeld is deferred (it may be released): Postal has no dropped event
    },
}

#: ESPs that send exactly one event per request, whatever the batch size asked for
SINGLE_EVENT_PROVIDERS = frozenset({"mailgun", "postmark", "postal"})
#: upper bound on events per request (keeps bodies well under the gateway's 1 MiB limit)
MAX_BATCH_SIZE = 500

#: a transactional-mail day: mostly deliveries, some engagement, a little trouble
DEFAULT_WEIGHTS: Mapping[EventType, float] = {
    _D: 60.0,
    _O: 20.0,
    _C: 8.0,
    _DF: 4.0,
    _B: 4.0,
    _DR: 2.0,
    _CO: 1.0,
    _U: 1.0,
}


def events_per_request(provider: str, batch_size: int) -> int:
    """How many events one request of ``provider`` carries for the requested batch size.

    Batching ESPs send ``batch_size`` events; SES and Resend send one event naming
    ``batch_size`` recipients, which Hookline stores as one event per recipient.
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch size must be between 1 and {MAX_BATCH_SIZE}, not {batch_size}")
    return 1 if provider in SINGLE_EVENT_PROVIDERS else batch_size


def parse_weights(text: str) -> dict[EventType, float]:
    """``"delivered=60, opened=20"`` -> weights; unknown types and bad numbers raise."""
    weights: dict[EventType, float] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"event weight {item!r} is not type=weight")
        try:
            event_type = EventType(name.strip())
        except ValueError:
            known = ", ".join(t.value for t in EventType)
            raise ValueError(f"unknown event type {name.strip()!r} (known: {known})") from None
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"weight of {event_type.value} is not a number: {value!r}") from None
        if weight < 0:
            raise ValueError(f"weight of {event_type.value} is negative")
        weights[event_type] = weight
    if not any(weight > 0 for weight in weights.values()):
        raise ValueError("at least one event type needs a positive weight")
    return weights


@dataclass(frozen=True)
class EventMix:
    """Weighted choice of ``(normalized type, ESP event name)`` for one provider."""

    provider: str
    choices: tuple[tuple[EventType, str], ...]
    cumulative: tuple[float, ...]

    @classmethod
    def for_provider(
        cls, provider: str, weights: Mapping[EventType, float] = DEFAULT_WEIGHTS
    ) -> EventMix:
        names = EVENT_NAMES.get(provider)
        if names is None:
            raise ValueError(f"no load-test event names for provider {provider!r}")
        choices = tuple(
            (event_type, names[event_type])
            for event_type, weight in weights.items()
            if weight > 0 and event_type in names
        )
        if not choices:
            wanted = ", ".join(t.value for t, w in weights.items() if w > 0)
            raise ValueError(f"{provider} can send none of the weighted event types ({wanted})")
        cumulative = tuple(itertools.accumulate(weights[event_type] for event_type, _ in choices))
        return cls(provider, choices, cumulative)

    def pick(self, rng: random.Random) -> tuple[EventType, str]:
        point = rng.random() * self.cumulative[-1]
        index = bisect.bisect_right(self.cumulative, point)
        return self.choices[min(index, len(self.choices) - 1)]
