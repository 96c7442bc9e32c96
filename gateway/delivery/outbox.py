"""The outbox write hook: enqueue work for every new event in the ingest transaction.

For each event that was new in the write (duplicates never reach hooks), one row per
processor that wants it: the suppressions processor for bounces, complaints, unsubscribes
and resubscribes with a recipient, and each sink whose ``event_types`` filter matches (no
filter: every event). One bulk ``INSERT ... SELECT FROM unnest(...)`` per write, which also
wakes idle dispatchers with ``pg_notify`` when committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from opentelemetry import propagate

from gateway.delivery.models import SINK, SUPPRESSIONS
from gateway.delivery.payload import encode_envelope, encode_signal
from gateway.settings import SinkSettings
from handlers.events import EmailEvent, EventType

__all__ = [
    "NOTIFY_CHANNEL",
    "SUPPRESSION_EVENT_TYPES",
    "OutboxWriter",
    "PlannedRow",
    "SinkRoute",
    "plan_rows",
]

#: the LISTEN/NOTIFY channel that wakes dispatchers
NOTIFY_CHANNEL = "hookline_outbox"

SUPPRESSION_EVENT_TYPES = frozenset(
    {EventType.BOUNCED, EventType.COMPLAINED, EventType.UNSUBSCRIBED, EventType.RESUBSCRIBED}
)

_INSERT = """
WITH inserted AS (
    INSERT INTO outbox (processor, sink, dedup_key, event_type, payload, trace_context, due_at)
    SELECT p, s, k, t, j::jsonb, $6::text, least(d, now())
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $7::timestamptz[])
        AS u(p, s, k, t, j, d)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT pg_notify('hookline_outbox', '') FROM (SELECT 1 FROM inserted LIMIT 1) AS any_row
"""


@dataclass(frozen=True, slots=True)
class SinkRoute:
    """A sink's name and the event types it wants (None: all)."""

    name: str
    event_types: frozenset[str] | None

    @classmethod
    def from_settings(cls, sink: SinkSettings) -> SinkRoute:
        return cls(sink.name, frozenset(sink.event_types) if sink.event_types else None)

    def wants(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


@dataclass(frozen=True, slots=True)
class PlannedRow:
    processor: str
    sink: str
    dedup_key: str
    event_type: str
    payload: str
    due_at: datetime


def plan_rows(events: Iterable[EmailEvent], sinks: Sequence[SinkRoute]) -> list[PlannedRow]:
    """The outbox rows for ``events`` (pure: no I/O)."""
    rows: list[PlannedRow] = []
    for event in events:
        event_type = event.event_type.value
        if event.event_type in SUPPRESSION_EVENT_TYPES:
            signal = encode_signal(event)
            if signal is not None:
                rows.append(
                    PlannedRow(
                        SUPPRESSIONS, "", event.dedup_key, event_type, signal, event.received_at
                    )
                )
        envelope: str | None = None
        for sink in sinks:
            if sink.wants(event_type):
                envelope = envelope if envelope is not None else encode_envelope(event)
                rows.append(
                    PlannedRow(
                        SINK, sink.name, event.dedup_key, event_type, envelope, event.received_at
                    )
                )
    return rows


class OutboxWriter:
    """The ``EventStore`` write hook (``store.add_hook(OutboxWriter(sinks))``)."""

    def __init__(self, sinks: Sequence[SinkSettings]) -> None:
        self.sinks = [SinkRoute.from_settings(sink) for sink in sinks]

    async def __call__(self, conn: asyncpg.Connection, events: Sequence[EmailEvent]) -> None:
        rows = plan_rows(events, self.sinks)
        if not rows:
            return
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        await conn.execute(
            _INSERT,
            [row.processor for row in rows],
            [row.sink for row in rows],
            [row.dedup_key for row in rows],
            [row.event_type for row in rows],
            [row.payload for row in rows],
            carrier.get("traceparent"),
            [row.due_at for row in rows],
        )
