"""Where one adapter's outcome on malformed input changed when the adapters moved to the one
strictness policy (``handlers._common``, issue #17 item 7), one test per change, on the
ESP's documented sample. (The changes every adapter shares are in ``test_field_policy``;
the optional fields that used to refuse a request are in each adapter's own tests.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handlers.base import ParseResult, PayloadError, SourceSpec, WebhookRequest
from handlers.events import EventType, TimeSource
from handlers.registry import get_adapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RECEIVED = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def load(provider: str, name: str) -> Any:
    return json.loads((FIXTURES / provider / name).read_bytes())


def parse(provider: str, body: bytes, content_type: str = "application/json") -> ParseResult:
    request = WebhookRequest("POST", "http://gw/", {"content-type": content_type}, body)
    return get_adapter(provider).parse(request, SourceSpec(provider=provider, name="m"), RECEIVED)


def ses_body(name: str, change: Any) -> bytes:
    envelope = load("ses", name)
    message = json.loads(envelope["Message"])
    change(message)
    envelope["Message"] = json.dumps(message)
    return json.dumps(envelope).encode()


@pytest.mark.parametrize(
    ("name", "container", "key"),
    [
        ("event_bounce_permanent.json", "bounce", "bouncedRecipients"),
        ("event_delivery.json", "delivery", "recipients"),
        ("event_send.json", "mail", "destination"),
    ],
)
def test_ses_an_empty_recipient_list_is_refused(name: str, container: str, key: str) -> None:
    """SES: a known event whose recipient list is empty is a PayloadError naming the list;
    it used to be stored as one event without a recipient."""
    body = ses_body(name, lambda message: message[container].update({key: []}))
    with pytest.raises(PayloadError) as info:
        parse("ses", body, "text/plain")
    assert info.value.field == f"Message.{container}.{key}"


def test_ses_an_unparseable_event_time_is_refused() -> None:
    """SES: a garbage ``delivery.timestamp`` is a PayloadError; it used to become the SNS
    envelope's time without a word."""
    body = ses_body("event_delivery.json", lambda m: m["delivery"].update(timestamp="soon"))
    with pytest.raises(PayloadError) as info:
        parse("ses", body, "text/plain")
    assert info.value.field == "Message.delivery.timestamp"


def test_resend_an_unparseable_created_at_is_refused() -> None:
    """Resend: a garbage ``created_at`` (the event's time) is a PayloadError; it used to
    fall back to the Svix timestamp."""
    body = load("resend", "email_delivered.json")
    body["created_at"] = "yesterday"
    with pytest.raises(PayloadError) as info:
        parse("resend", json.dumps(body).encode())
    assert info.value.field == "created_at"


def test_resend_a_contact_unsubscribe_needs_its_address() -> None:
    """Resend: ``contact.updated`` with ``unsubscribed`` acts on the address, so without one
    it is a PayloadError; it used to be stored as an unsubscribe of nobody."""
    body = load("resend", "contact_updated_unsubscribed.json")
    assert parse("resend", json.dumps(body).encode()).events[0].event_type is (
        EventType.UNSUBSCRIBED
    )
    body["data"].pop("email")
    with pytest.raises(PayloadError) as info:
        parse("resend", json.dumps(body).encode())
    assert info.value.field == "data.email"


def test_postal_an_unparseable_payload_timestamp_is_refused() -> None:
    """Postal: a garbage ``payload.timestamp`` is a PayloadError; it used to fall back to
    the webhook's timestamp."""
    body = load("postal", "message_sent.json")
    body["payload"]["timestamp"] = "soon"
    with pytest.raises(PayloadError) as info:
        parse("postal", json.dumps(body).encode())
    assert info.value.field == "payload.timestamp"


def test_brevo_an_unreadable_send_time_is_skipped() -> None:
    """Brevo: ``s_epoch`` is the envelope's time (when the message was sent): unreadable, it
    is skipped for the receipt time, as every envelope time is; it used to refuse the
    request."""
    item = load("brevo", "delivered.json")
    for key in ("ts_epoch", "ts_event"):
        item.pop(key)
    item["s_epoch"] = "soon"
    (event,) = parse("brevo", json.dumps(item).encode()).events
    assert (event.occurred_at, event.time_source) == (RECEIVED, TimeSource.RECEIVED)
