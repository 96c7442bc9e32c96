"""``Samples``: what one ESP's sample module declares, and ``samples_for`` that finds it.

Each provider in ``handlers.registry.PROVIDERS`` has a module ``hookline_testing/_<provider>.py``
holding ``SAMPLES``, the way ``handlers/<provider>.py`` holds ``ADAPTER``. Everything the
tests, the load tests and the CLI's ``demo`` / ``sign`` know about an ESP's traffic comes from
there; what each sample event normalizes to is read from the adapter itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from types import MappingProxyType
from typing import Any, Protocol

from handlers.base import SourceSpec, WebhookRequest
from handlers.events import EventType
from handlers.registry import PROVIDERS, get_adapter
from hookline_testing._batch import BatchItems

__all__ = ["ExampleBody", "MakeSource", "Samples", "SignRequest", "samples_for"]


class MakeSource(Protocol):
    def __call__(self, name: str = "test", **overrides: Any) -> tuple[SourceSpec, Any]:
        """A source with fresh credentials, and the material that signs for it."""
        ...


class ExampleBody(Protocol):
    def __call__(
        self,
        count: int = 1,
        *,
        seed: int = 0,
        event: str | None = None,
        now: datetime | None = None,
    ) -> bytes:
        """A body the ESP would send: ``count`` events (or recipients) of ESP event ``event``,
        distinct per ``seed``, dated ``now``."""
        ...


class SignRequest(Protocol):
    def __call__(
        self,
        source: SourceSpec,
        material: Any,
        body: bytes,
        *,
        now: datetime,
        url: str | None = None,
    ) -> WebhookRequest:
        """The POST the ESP would send with ``body``, signed at ``now`` with ``material``."""
        ...


#: puts the custom data ``key: value`` into an example body where the ESP carries it
AddMetadata = Callable[[bytes, str, str], bytes]


@dataclass(frozen=True, slots=True)
class Samples:
    """One ESP's test traffic: credentials, example bodies and the signature the ESP adds."""

    provider: str
    make_source: MakeSource
    example_body: ExampleBody
    signed_request: SignRequest
    #: the ESP event names ``example_body(event=...)`` builds; where several normalize to
    #: the same type, the first one listed stands for that type in ``event_names``
    events: tuple[str, ...]
    #: the ESP sends exactly one event per request (``example_body`` refuses count > 1);
    #: otherwise ``count`` events, or one event naming ``count`` recipients
    one_event_per_request: bool
    #: its share of load-test requests when a profile names none (how common its webhooks
    #: are: the large ESPs send most)
    traffic_share: int
    #: where the ESP carries the sender's custom data; None when its webhooks carry none
    add_metadata: AddMetadata | None
    #: how a batch body holds its items; None when a body is one event (even one naming
    #: several recipients): a malformed event is then a malformed body
    batch_items: BatchItems | None = None

    @property
    def event_names(self) -> Mapping[EventType, str]:
        """Normalized type -> the ESP event name whose example the adapter normalizes to it.

        Only names whose example also comes in batches (several events or recipients, unless
        the ESP sends one event per request), and types other than ``unknown``: setup and
        inbound messages, and events about a contact or a domain, are left out."""
        return _event_names(self.provider)


@cache
def samples_for(provider: str) -> Samples:
    """The sample module's ``SAMPLES`` for ``provider``; ``LookupError`` if it has none."""
    if provider not in PROVIDERS:
        raise LookupError(f"unknown provider {provider!r}")
    module = importlib.import_module(f"hookline_testing._{provider}")
    samples = module.SAMPLES
    if not isinstance(samples, Samples) or samples.provider != provider:
        raise TypeError(f"hookline_testing._{provider}.SAMPLES is not the {provider} Samples")
    return samples


@cache
def _event_names(provider: str) -> Mapping[EventType, str]:
    samples = samples_for(provider)
    adapter = get_adapter(provider)
    source = SourceSpec(provider=provider, name="samples")
    at = datetime(2025, 1, 1, tzinfo=UTC)
    names: dict[EventType, str] = {}
    for name in samples.events:
        if not samples.one_event_per_request:
            try:
                samples.example_body(2, seed=0, event=name, now=at)
            except ValueError:
                continue
        body = samples.example_body(1, seed=0, event=name, now=at)
        request = WebhookRequest(
            "POST", "http://127.0.0.1/", {"content-type": adapter.content_types[0]}, body
        )
        for event in adapter.parse(request, source, at).events:
            if event.event_type is not EventType.UNKNOWN:
                names.setdefault(event.event_type, name)
    return MappingProxyType(names)
