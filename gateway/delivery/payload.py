"""What goes into an outbox row: the sink payload and the suppression signal, as JSON.

Sinks receive a Standard Webhooks style envelope::

    {"type": "email.bounced", "timestamp": "<occurred_at>", "data": {<EmailEvent>}}

where ``data`` is the normalized event (``raw`` included). The suppressions processor gets a
compact ``SuppressionSignal`` instead: only what list hygiene needs.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from handlers.events import EmailEvent

__all__ = [
    "SuppressionSignal",
    "decode_signal",
    "encode_envelope",
    "encode_signal",
    "envelope_type",
    "event_type_name",
]


class _Envelope(msgspec.Struct, frozen=True):
    type: str
    timestamp: datetime
    data: EmailEvent


class SuppressionSignal(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of an event the suppression list acts on."""

    dedup_key: str
    provider: str
    event_type: str
    recipient: str
    occurred_at: datetime
    bounce_class: str | None = None


_encoder = msgspec.json.Encoder()
_signal_decoder = msgspec.json.Decoder(SuppressionSignal)


def _jsonb_safe(data: bytes) -> str:
    """PostgreSQL jsonb rejects the NUL escape; ESP payloads occasionally contain it."""
    return data.decode().replace("\\u0000", "\\ufffd")


def event_type_name(event: EmailEvent) -> str:
    """The envelope ``type`` of an event: ``email.<event_type>``."""
    return envelope_type(event.event_type.value)


def envelope_type(event_type: str) -> str:
    """The envelope ``type`` for a normalized event type (``bounced`` -> ``email.bounced``)."""
    return f"email.{event_type}"


def encode_envelope(event: EmailEvent) -> str:
    """The JSON body a sink receives for ``event``."""
    return _jsonb_safe(_encoder.encode(_Envelope(event_type_name(event), event.occurred_at, event)))


def encode_signal(event: EmailEvent) -> str | None:
    """The suppression signal of ``event`` as JSON (None without a recipient)."""
    if not event.recipient:
        return None
    signal = SuppressionSignal(
        dedup_key=event.dedup_key,
        provider=event.provider,
        event_type=event.event_type.value,
        recipient=event.recipient,
        occurred_at=event.occurred_at,
        bounce_class=event.bounce_class.value if event.bounce_class is not None else None,
    )
    return _jsonb_safe(_encoder.encode(signal))


def decode_signal(payload: str) -> SuppressionSignal:
    return _signal_decoder.decode(payload)
