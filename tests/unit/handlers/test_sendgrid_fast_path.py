"""SendGrid's fast path (typed decoding in C) and its careful path (field by field) must
produce the same events for every body both accept; anything the fast path declines falls
back to the careful path, which names the bad field."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers import sendgrid
from handlers.base import WebhookRequest
from handlers.events import EmailEvent
from hookline_testing import samples_for

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sendgrid"
RECEIVED = datetime(2023, 11, 14, 22, 20, 1, tzinfo=UTC)


def careful(body: bytes) -> list[EmailEvent]:
    items = json.loads(body)
    return [
        sendgrid._event(sendgrid._checked_fields(item, f"[{i}]"), item, "test", RECEIVED)
        for i, item in enumerate(items)
    ]


def fast(body: bytes) -> list[EmailEvent] | None:
    pairs = sendgrid._well_formed(body)
    if pairs is None:
        return None
    return [sendgrid._event(fields, raw, "test", RECEIVED) for fields, raw in pairs]


def test_fixtures_take_the_fast_path_and_match_the_careful_one() -> None:
    """Every recorded SendGrid payload is well formed: the fast path takes it, and its
    events equal the careful path's field for field."""
    for path in sorted(FIXTURES.glob("*.json")):
        body = path.read_bytes()
        events = fast(body)
        assert events is not None, path.name
        assert events == careful(body), path.name


def test_example_bodies_of_every_event_type_match() -> None:
    """The load-test generator's bodies (all event types, custom args, categories)."""
    for event in sendgrid.EVENT_TYPES:
        body = samples_for("sendgrid").example_body(5, seed=7, event=event)
        assert fast(body) == careful(body), event


def test_values_the_fast_path_declines_go_the_careful_way() -> None:
    """Numeric ids, 0/1 booleans, numeric-string timestamps and empty required fields are
    not the fast path's business: it declines, and parse still succeeds or names the field."""
    declined = [
        {"email": "a@example.com", "event": "open", "sg_event_id": 12345},
        {"email": "a@example.com", "event": "open", "sg_machine_open": 1},
        {"email": "a@example.com", "event": "open", "timestamp": "1700000000"},
        {"email": "a@example.com", "event": "open", "category": ["a", 7]},
        {"email": "", "event": "open"},
        {"email": "a@example.com", "event": "open", "timestamp": 1e30},
    ]
    for item in declined:
        assert sendgrid._well_formed(json.dumps([item]).encode()) is None, item
    body = json.dumps([declined[0], declined[1], declined[2], declined[3]]).encode()
    source, _ = samples_for("sendgrid").make_source()
    request = WebhookRequest("POST", "", {}, body)
    events = sendgrid.ADAPTER.parse(request, source, RECEIVED).events
    assert events == careful(body)
    assert events[0].provider_event_id == "12345"
    assert events[1].machine_open is True
    assert events[3].tags == ("a", "7")


_text = st.one_of(st.none(), st.text(max_size=12))
_item = st.fixed_dictionaries(
    {
        "email": st.text(min_size=1, max_size=20),
        "event": st.sampled_from([*sendgrid.EVENT_TYPES, "weird"]),
    },
    optional={
        "timestamp": st.one_of(
            st.none(), st.integers(0, 4_000_000_000), st.floats(0, 4e9, allow_nan=False)
        ),
        "sg_event_id": _text,
        "sg_message_id": _text,
        "smtp-id": _text,
        "response": _text,
        "reason": _text,
        "status": _text,
        "type": st.sampled_from(["bounce", "blocked", "expired", "other", ""]),
        "bounce_classification": _text,
        "url": _text,
        "marketing_campaign_id": st.one_of(st.none(), st.integers(0, 10**9), st.text(max_size=5)),
        "marketing_campaign_name": _text,
        "singlesend_name": _text,
        "sg_machine_open": st.one_of(st.none(), st.booleans()),
        "category": st.one_of(
            st.none(), st.text(max_size=5), st.lists(st.text(max_size=5), max_size=3)
        ),
        "order_id": st.text(max_size=8),
        "pool": st.fixed_dictionaries({"name": st.text(max_size=5)}),
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_item, max_size=4))
def test_fast_and_careful_paths_agree_on_generated_bodies(items: list[dict[str, Any]]) -> None:
    """Whenever the fast path accepts a body, its events equal the careful path's."""
    body = json.dumps(items).encode()
    events = fast(body)
    if events is not None:
        assert events == careful(body)
