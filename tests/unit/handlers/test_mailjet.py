"""Mailjet adapter: grouped and single-event bodies, normalization, transport auth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers import mailjet
from handlers.base import (
    AuthError,
    ContentTypeError,
    PayloadError,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import BounceClass, EmailEvent, EventType, content_dedup_key
from hookline_testing import samples_for
from tests.unit.handlers._isolation import check_bad_item_is_rejected_alone

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mailjet"
NOW = datetime(2023, 11, 14, 22, 20, tzinfo=UTC)
RECEIVED = NOW + timedelta(seconds=1)
ADAPTER = mailjet.ADAPTER


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def unsigned(body: bytes, content_type: str = "application/json") -> WebhookRequest:
    return WebhookRequest(
        "POST", "http://hookline/webhooks/mailjet/test", {"content-type": content_type}, body
    )


def parse(body: bytes) -> list[EmailEvent]:
    source, _ = samples_for("mailjet").make_source()
    return ADAPTER.parse(unsigned(body), source, RECEIVED).events


EXPECTED = [
    ("sent", EventType.DELIVERED, None),
    ("open", EventType.OPENED, None),
    ("click", EventType.CLICKED, None),
    ("bounce", EventType.BOUNCED, BounceClass.HARD),
    ("bounce", EventType.BOUNCED, BounceClass.SOFT),
    ("bounce", EventType.DEFERRED, None),
    ("blocked", EventType.DROPPED, None),
    ("spam", EventType.COMPLAINED, None),
    ("unsub", EventType.UNSUBSCRIBED, None),
]


@pytest.mark.parametrize(("index", "expected"), list(enumerate(EXPECTED)))
def test_every_documented_event_maps_to_its_normalized_type(
    index: int, expected: tuple[str, EventType, BounceClass | None]
) -> None:
    """sent is delivered, blocked is dropped, bounces follow hard_bounce (greylisting is a
    deferral); raw is the event verbatim."""
    esp_event, event_type, bounce_class = expected
    events = parse(fixture("grouped_events"))
    assert len(events) == len(EXPECTED)
    event = events[index]
    assert event.esp_event == esp_event
    assert event.event_type is event_type
    assert event.bounce_class == bounce_class
    assert event.raw == json.loads(fixture("grouped_events"))[index]


def test_sent_fields_ids_and_metadata() -> None:
    """MessageID becomes a string message id; a JSON Payload and CustomID are metadata;
    the SMTP reply is the diagnostic; dedup hashes the event."""
    event = parse(fixture("grouped_events"))[0]
    raw = json.loads(fixture("grouped_events"))[0]
    assert event.provider == "mailjet"
    assert event.recipient == "api@mailjet.com"
    assert event.message_id == "19421777835146490"
    assert event.occurred_at == datetime.fromtimestamp(1433333949, tz=UTC)
    assert event.metadata == {"order_id": "A-1", "tenant": "acme", "CustomID": "helloworld"}
    assert event.diagnostic == "sent (250 2.0.0 OK 1433333948 fa5si855896wjc.199 - gsmtp)"
    assert event.smtp_status == "2.0.0"
    assert event.provider_event_id is None
    assert event.dedup_key == content_dedup_key("mailjet", raw)
    assert event.campaign is None


def test_plain_payload_is_kept_under_payload_key() -> None:
    """A Payload that is not a JSON object is kept as {"payload": <string>}."""
    spam = parse(fixture("grouped_events"))[7]
    assert spam.metadata == {"payload": "plain text payload", "CustomID": "helloworld"}


def test_bounce_and_block_keep_error_and_comment() -> None:
    """Mailjet's error is the reason and its comment the diagnostic."""
    events = parse(fixture("grouped_events"))
    hard, soft, blocked = events[3], events[4], events[6]
    assert hard.reason == "user unknown"
    assert hard.diagnostic is not None and hard.diagnostic.startswith("Host or domain")
    assert soft.smtp_status == "4.2.2"
    assert blocked.reason == "user unknown"


def test_click_fields_and_campaign() -> None:
    """Clicks carry url, IP, user agent and customcampaign as the campaign."""
    click = parse(fixture("grouped_events"))[2]
    assert click.url == "https://mailjet.com"
    assert click.ip == "88.123.56.78"
    assert click.user_agent is not None and "Chrome" in click.user_agent
    assert click.campaign == "spring_sale"


def test_legacy_single_object_is_accepted() -> None:
    """Without event grouping Mailjet posts a bare object: one event, same normalization."""
    (event,) = parse(fixture("legacy_single_sent"))
    assert event.event_type is EventType.DELIVERED
    assert event.dedup_key == parse(fixture("grouped_events"))[0].dedup_key


def test_message_guid_fallback_and_unknown_event() -> None:
    """Without a MessageID the Message_GUID is used; an unmapped event is unknown."""
    (event,) = parse(b'[{"event": "newthing", "Message_GUID": "abc-1", "MessageID": 0}]')
    assert event.event_type is EventType.UNKNOWN
    assert event.message_id == "abc-1"
    assert event.occurred_at == RECEIVED


def test_empty_group_yields_no_events() -> None:
    """An empty array is valid and yields nothing."""
    assert parse(b"[]") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'[{"event": "sent"', "body"),
        (b'{"event": "s\xe9nt"}', "body"),
        (b"42", "body"),
        (b'"sent"', "body"),
        (b"{}", "event"),
        (b'{"event": "sent", "time": "noon"}', "time"),
    ],
)
def test_bad_bodies_raise_payload_error_naming_the_field(body: bytes, field: str) -> None:
    """Truncated, non-UTF-8 and wrongly shaped bodies raise PayloadError naming the field."""
    with pytest.raises(PayloadError) as info:
        parse(body)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("bad", "suffix"),
    [
        (b"3", ""),
        (b"{}", ".event"),
        (b'{"event": "sent", "time": [1]}', ".time"),
        (b'{"event": "bounce", "hard_bounce": "sometimes"}', ".hard_bounce"),
        (b'{"event": "sent", "time": 1700000000}', ".email"),
        (b'{"event": "bounce", "email": "a@example.com"}', ".hard_bounce"),
    ],
)
def test_a_malformed_item_is_rejected_alone_and_the_rest_parsed(bad: bytes, suffix: str) -> None:
    """In a grouped (array) body, an item of the wrong type or with a bad field becomes one
    RejectedItem naming the field; the other items are normalized as on their own, and
    parse_item replays one item with the same normalization."""
    source, _ = samples_for("mailjet").make_source()
    check_bad_item_is_rejected_alone(
        ADAPTER,
        source,
        lambda items: unsigned(b"[" + b",".join(items) + b"]"),
        good=b'{"event": "sent", "time": 1700000000, "email": "a@example.com"}',
        bad=bad,
        suffix=suffix,
        received_at=RECEIVED,
    )


@pytest.mark.parametrize(
    "extra",
    [{"Payload": {"a": 1}}, {"CustomID": ["x"]}, {"url": 5.5}, {"agent": {}}, {"ip": True}],
)
def test_optional_fields_of_the_wrong_type_read_as_absent(extra: dict[str, Any]) -> None:
    """Unified strictness policy (handlers._common): an optional field of the wrong type is
    treated as absent and the event is stored, where the item used to be rejected (a
    Payload that is an object, not the JSON string Mailjet sends, is no metadata)."""
    item = {"event": "click", "time": 1700000000, "email": "a@example.com", **extra}
    result = ADAPTER.parse(
        unsigned(json.dumps([item]).encode()), samples_for("mailjet").make_source()[0], RECEIVED
    )
    assert result.rejected == []
    (event,) = result.events
    assert event.metadata == {}
    assert (event.user_agent, event.ip) == (None, None)
    assert event.url == ("5.5" if "url" in extra else None)
    assert event.raw == item


def test_wrong_content_type_is_refused() -> None:
    """Mailjet posts JSON; anything else is refused."""
    with pytest.raises(ContentTypeError):
        ADAPTER.check_content_type(unsigned(b"[]", "text/html"))


async def test_transport_auth() -> None:
    """Configured basic auth passes; other credentials are invalid; none are missing; a
    source without credentials fails closed."""
    source, material = samples_for("mailjet").make_source()
    request = samples_for("mailjet").signed_request(
        source, material, fixture("grouped_events"), now=NOW
    )
    await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    other, _ = samples_for("mailjet").make_source()
    for candidate, reason in (
        (samples_for("mailjet").signed_request(other, None, b"[]", now=NOW), "invalid"),
        (unsigned(b"[]"), "missing"),
    ):
        with pytest.raises(AuthError) as info:
            await ADAPTER.verify(candidate, source, VerifyContext(now=NOW))
        assert info.value.reason == reason
    bare, _ = samples_for("mailjet").make_source(basic_auth=None)
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(unsigned(b"[]"), bare, VerifyContext(now=NOW))
    assert info.value.reason == "missing"


@pytest.mark.parametrize(
    ("event", "event_type"),
    [("sent", EventType.DELIVERED), ("bounce", EventType.BOUNCED), ("open", EventType.OPENED)],
)
async def test_example_body_round_trips(event: str, event_type: EventType) -> None:
    """example_body builds a grouped batch with distinct dedup keys across seeds."""
    source, material = samples_for("mailjet").make_source("load")
    keys: set[str] = set()
    for seed in (0, 1):
        request = samples_for("mailjet").signed_request(
            source,
            material,
            samples_for("mailjet").example_body(3, seed=seed, event=event),
            now=NOW,
        )
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))
        events = ADAPTER.parse(request, source, RECEIVED).events
        assert [e.event_type for e in events] == [event_type] * 3
        assert events[0].metadata["tenant"] == "acme"
        keys.update(e.dedup_key for e in events)
    assert len(keys) == 6


def test_parse_api_payload_is_a_control_message() -> None:
    """Mailjet's Parse API payload (a received email) at the tracking URL is an
    inbound_message control message, not a 400 (it has no 'event')."""
    source, _ = samples_for("mailjet").make_source()
    result = ADAPTER.parse(unsigned(fixture("parse_api")), source, RECEIVED)
    assert result.events == []
    assert result.control is not None and result.control.kind == "inbound_message"
