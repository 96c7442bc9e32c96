"""Which outbox rows a new event produces (pure planning, no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from gateway.delivery.outbox import SinkRoute, plan_rows
from gateway.delivery.payload import decode_signal
from handlers.events import BounceClass, EmailEvent, EventType

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make(event_type: EventType, recipient: str | None = "a@example.com", n: int = 1) -> EmailEvent:
    return EmailEvent(
        provider="sendgrid",
        source="main",
        event_type=event_type,
        occurred_at=AT,
        received_at=AT,
        recipient=recipient,
        message_id="m1",
        dedup_key=f"sendgrid:{event_type.value}:{n}",
        bounce_class=BounceClass.HARD if event_type is EventType.BOUNCED else None,
        raw={"nul": "a\x00b"},
    )


SINKS = [SinkRoute("all", None), SinkRoute("bounces", frozenset({"bounced"}))]


def test_delivered_goes_to_unfiltered_sinks_only() -> None:
    """A delivered event goes to unfiltered sinks only, not to the suppression list."""
    rows = plan_rows([make(EventType.DELIVERED)], SINKS)
    assert [(r.processor, r.sink) for r in rows] == [("sink", "all")]


def test_list_hygiene_events_also_go_to_the_suppressions_processor() -> None:
    """Bounces, complaints, unsubscribes and resubscribes with a recipient feed the
    suppression list; matching sinks get them too."""
    rows = plan_rows(
        [
            make(EventType.BOUNCED, n=1),
            make(EventType.COMPLAINED, n=2),
            make(EventType.UNSUBSCRIBED, n=3),
            make(EventType.RESUBSCRIBED, n=4),
            make(EventType.BOUNCED, recipient=None, n=5),
        ],
        SINKS,
    )
    suppressions = [r.dedup_key for r in rows if r.processor == "suppressions"]
    assert suppressions == [
        "sendgrid:bounced:1",
        "sendgrid:complained:2",
        "sendgrid:unsubscribed:3",
        "sendgrid:resubscribed:4",
    ]
    assert [r.dedup_key for r in rows if r.sink == "bounces"] == [
        "sendgrid:bounced:1",
        "sendgrid:bounced:5",
    ]


def test_sink_payload_is_the_envelope_around_the_normalized_event() -> None:
    """``{"type": "email.<type>", "timestamp", "data": <EmailEvent>}``, NUL-safe for jsonb."""
    (row,) = plan_rows([make(EventType.DELIVERED)], [SinkRoute("all", None)])
    payload = msgspec.json.decode(row.payload)
    assert payload["type"] == "email.delivered"
    assert payload["timestamp"] == "2024-05-01T12:00:00Z"
    assert payload["data"]["dedup_key"] == "sendgrid:delivered:1"
    assert payload["data"]["raw"] == {"nul": "a\ufffdb"}
    assert row.due_at == AT


def test_suppression_signal_is_compact() -> None:
    """The suppressions row carries only what list hygiene needs, not the raw event."""
    (row,) = [r for r in plan_rows([make(EventType.BOUNCED)], []) if r.processor == "suppressions"]
    signal = decode_signal(row.payload)
    assert (signal.recipient, signal.event_type, signal.bounce_class) == (
        "a@example.com",
        "bounced",
        "hard",
    )
    assert "raw" not in msgspec.json.decode(row.payload)


def test_auto_replies_never_reach_the_suppressions_processor() -> None:
    """An auto-reply goes to sinks that want it, never to the suppression list."""
    rows = plan_rows([make(EventType.AUTO_REPLIED)], SINKS)
    assert [(r.processor, r.sink) for r in rows] == [("sink", "all")]
