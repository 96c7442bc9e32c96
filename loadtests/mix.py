"""What load-test traffic contains: which event types, in which proportions, per provider.

The weight table is expressed in Hookline's normalized vocabulary (``EventType``) so one
``delivered=60,opened=20`` mix means the same thing for every ESP; ``event_names`` maps each
normalized type to the ESP's own event name whose sample (``hookline_testing``) the adapter
normalizes to it, so a new ESP needs nothing here. A type a provider cannot express is left
out of that provider's mix, and the remaining weights are renormalized.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Mapping
from dataclasses import dataclass

from handlers.events import EventType
from hookline_testing import samples_for

__all__ = [
    "DEFAULT_WEIGHTS",
    "MAX_BATCH_SIZE",
    "EventMix",
    "event_names",
    "events_per_request",
    "parse_weights",
]

#: upper bound on events per request (keeps bodies well under the gateway's 1 MiB limit)
MAX_BATCH_SIZE = 500

#: a transactional-mail day: mostly deliveries, some engagement, a little trouble
DEFAULT_WEIGHTS: Mapping[EventType, float] = {
    EventType.DELIVERED: 60.0,
    EventType.OPENED: 20.0,
    EventType.CLICKED: 8.0,
    EventType.DEFERRED: 4.0,
    EventType.BOUNCED: 4.0,
    EventType.DROPPED: 2.0,
    EventType.COMPLAINED: 1.0,
    EventType.UNSUBSCRIBED: 1.0,
}


def event_names(provider: str) -> Mapping[EventType, str]:
    """Normalized type -> the ESP's event name that ``example_body(event=...)`` builds for it
    (``LookupError`` for an unknown provider)."""
    return samples_for(provider).event_names


def events_per_request(provider: str, batch_size: int) -> int:
    """How many events one request of ``provider`` carries for the requested batch size.

    Batching ESPs send ``batch_size`` events; SES and Resend send one event naming
    ``batch_size`` recipients, which Hookline stores as one event per recipient.
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch size must be between 1 and {MAX_BATCH_SIZE}, not {batch_size}")
    return 1 if samples_for(provider).one_event_per_request else batch_size


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
        try:
            names = event_names(provider)
        except LookupError:
            raise ValueError(f"no load-test event names for provider {provider!r}") from None
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
