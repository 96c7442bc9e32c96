"""SparkPost adapter: msys batches, pings, bounce classes and transport authentication."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers import sparkpost
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

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sparkpost"
NOW = datetime(2023, 11, 14, 22, 20, tzinfo=UTC)
RECEIVED = NOW + timedelta(seconds=1)
ADAPTER = sparkpost.ADAPTER


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def unsigned(body: bytes, content_type: str = "application/json") -> WebhookRequest:
    return WebhookRequest(
        "POST", "http://hookline/webhooks/sparkpost/test", {"content-type": content_type}, body
    )


def parse(body: bytes) -> list[EmailEvent]:
    source, _ = samples_for("sparkpost").make_source()
    return ADAPTER.parse(unsigned(body), source, RECEIVED).events


EXPECTED = [
    ("injection", EventType.QUEUED, None),
    ("delivery", EventType.DELIVERED, None),
    ("delay", EventType.DEFERRED, None),
    ("bounce", EventType.BOUNCED, BounceClass.HARD),
    ("bounce", EventType.BOUNCED, BounceClass.SOFT),
    ("bounce", EventType.BOUNCED, BounceClass.UNDETERMINED),
    ("out_of_band", EventType.BOUNCED, BounceClass.HARD),
    ("policy_rejection", EventType.DROPPED, None),
    ("generation_rejection", EventType.DROPPED, None),
    ("generation_failure", EventType.DROPPED, None),
    ("spam_complaint", EventType.COMPLAINED, None),
    ("open", EventType.OPENED, None),
    ("initial_open", EventType.OPENED, None),
    ("amp_open", EventType.OPENED, None),
    ("amp_initial_open", EventType.OPENED, None),
    ("click", EventType.CLICKED, None),
    ("amp_click", EventType.CLICKED, None),
    ("list_unsubscribe", EventType.UNSUBSCRIBED, None),
    ("link_unsubscribe", EventType.UNSUBSCRIBED, None),
    ("relay_injection", EventType.UNKNOWN, None),
]


@pytest.mark.parametrize(("index", "expected"), list(enumerate(EXPECTED)))
def test_every_documented_event_maps_to_its_normalized_type(
    index: int, expected: tuple[str, EventType, BounceClass | None]
) -> None:
    """Each SparkPost event type gets its normalized type and bounce class; raw is the
    array item verbatim."""
    esp_event, event_type, bounce_class = expected
    events = parse(fixture("all_events"))
    assert len(events) == len(EXPECTED)
    event = events[index]
    assert event.esp_event == esp_event
    assert event.event_type is event_type
    assert event.bounce_class == bounce_class
    assert event.raw == json.loads(fixture("all_events"))[index]


@pytest.mark.parametrize(
    ("code", "bounce_class"),
    [
        ("1", BounceClass.UNDETERMINED),
        ("10", BounceClass.HARD),
        ("20", BounceClass.SOFT),
        ("21", BounceClass.SOFT),
        ("22", BounceClass.SOFT),
        ("23", BounceClass.SOFT),
        ("24", BounceClass.SOFT),
        ("25", BounceClass.UNDETERMINED),
        ("26", BounceClass.UNDETERMINED),
        ("30", BounceClass.HARD),
        ("40", BounceClass.SOFT),
        ("50", BounceClass.SOFT),
        ("51", BounceClass.SOFT),
        ("52", BounceClass.SOFT),
        ("53", BounceClass.SOFT),
        ("54", BounceClass.SOFT),
        ("70", BounceClass.SOFT),
        ("80", BounceClass.UNDETERMINED),
        ("90", BounceClass.HARD),
        ("999", BounceClass.UNDETERMINED),
    ],
)
def test_bounce_class_table(code: str, bounce_class: BounceClass) -> None:
    """Every documented bounce classification code maps to hard, soft or undetermined."""
    bounce = {"type": "bounce", "bounce_class": code, "rcpt_to": "a@example.com"}
    body = [{"msys": {"message_event": bounce}}]
    (event,) = parse(json.dumps(body).encode())
    assert event.bounce_class is bounce_class


def test_bounce_fields_and_ids() -> None:
    """A bounce keeps its class name, raw reason, enhanced status; ids per the docstring."""
    event = parse(fixture("all_events"))[3]
    assert event.provider == "sparkpost"
    assert event.reason == "Invalid Recipient"
    assert event.diagnostic is not None and event.diagnostic.startswith("550 5.1.1")
    assert event.smtp_status == "5.1.1"
    assert event.recipient == "Recipient@example.com"
    assert event.message_id == "65832150921904138"
    assert event.provider_event_id == "92356927693813859"
    assert event.dedup_key == "sparkpost:92356927693813859"
    assert event.occurred_at == datetime.fromtimestamp(1460989510, tz=UTC)


def test_metadata_tags_and_campaign() -> None:
    """rcpt_meta is the metadata, rcpt_tags the tags and campaign_id the campaign."""
    event = parse(fixture("all_events"))[1]
    assert event.metadata == {"customKey": "customValue"}
    assert event.tags == ("male", "US")
    assert event.campaign == "Example Campaign Name"


def test_delay_and_policy_rejection_keep_reason() -> None:
    """A delay and a policy rejection keep the class name and the SMTP text."""
    events = parse(fixture("all_events"))
    delay, rejection = events[2], events[7]
    assert delay.reason == "DNS Failure"
    assert delay.smtp_status == "4.4.4"
    assert delay.bounce_class is None
    assert rejection.reason == "Admin Failure"
    assert rejection.diagnostic is not None and "suppressed" in rejection.diagnostic


def test_click_and_open_fields() -> None:
    """Clicks carry the target URL; engagement events carry user agent and IP."""
    click = parse(fixture("all_events"))[15]
    assert click.url == "http://example.com"
    assert click.ip == "127.0.0.1"
    assert click.user_agent is not None and "Chrome" in click.user_agent


@pytest.mark.parametrize("name", ["ping_empty", "ping_msys"])
def test_pings_yield_no_events(name: str) -> None:
    """SparkPost's ping bodies, [] and [{"msys": {}}], are valid and yield no events."""
    assert parse(fixture(name)) == []


def test_event_without_id_and_iso_timestamp() -> None:
    """Without event_id the dedup key hashes the item; ISO timestamps are accepted."""
    delivery = {"type": "delivery", "timestamp": "2023-11-14T22:13:20.000Z", "rcpt_to": "a@b.org"}
    item: dict[str, Any] = {"msys": {"message_event": delivery}}
    (event,) = parse(json.dumps([item]).encode())
    assert event.dedup_key == content_dedup_key("sparkpost", item)
    assert event.occurred_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert event.recipient == "a@b.org"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'[{"msys": {"message_event": {"type": "delivery"}}}', "body"),
        (b'[{"msys": {"message_event": {"type": "d\xe9livery"}}}]', "body"),
        (b"{}", "body"),
        (b"12", "body"),
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
        (b"[]", ""),
        (b"{}", ".msys"),
        (b'{"msys": []}', ".msys"),
        (b'{"msys": {"message_event": 3}}', ".msys.message_event"),
        (b'{"msys": {"message_event": {}}}', ".msys.message_event.type"),
        (
            b'{"msys": {"message_event": {"type": "delivery", "rcpt_to": "a@example.com", '
            b'"timestamp": "later"}}}',
            ".msys.message_event.timestamp",
        ),
        (
            b'{"msys": {"message_event": {"type": "delivery", "rcpt_to": "a@example.com"}, '
            b'"track_event": {"type": 5}}}',
            ".msys.track_event.type",
        ),
        (b'{"msys": {"message_event": {"type": "delivery"}}}', ".msys.message_event.rcpt_to"),
        (
            b'{"msys": {"message_event": {"type": "bounce", "rcpt_to": 7}}}',
            ".msys.message_event.rcpt_to",
        ),
    ],
)
def test_a_malformed_item_is_rejected_alone_and_the_rest_parsed(bad: bytes, suffix: str) -> None:
    """In a well-formed batch, an item of the wrong shape or with a bad field becomes one
    RejectedItem naming the field (an item with two event classes is rejected whole when
    one is bad); the other items are normalized as on their own, and parse_item replays one
    item with the same normalization."""
    source, _ = samples_for("sparkpost").make_source()
    check_bad_item_is_rejected_alone(
        ADAPTER,
        source,
        lambda items: unsigned(b"[" + b",".join(items) + b"]"),
        good=b'{"msys": {"message_event": {"type": "delivery", "event_id": "1", '
        b'"rcpt_to": "a@example.com"}}}',
        bad=bad,
        suffix=suffix,
        received_at=RECEIVED,
    )


@pytest.mark.parametrize(
    "extra",
    [{"rcpt_meta": "x"}, {"rcpt_tags": [None]}, {"rcpt_tags": "vip"}, {"event_id": {}}],
)
def test_optional_fields_of_the_wrong_type_read_as_absent(extra: dict[str, Any]) -> None:
    """Unified strictness policy (handlers._common): an optional field of the wrong type is
    treated as absent (a lone string is a tag, as in every adapter) and the event is
    stored, where the item used to be rejected."""
    delivery = {"type": "delivery", "rcpt_to": "a@example.com", **extra}
    result = ADAPTER.parse(
        unsigned(json.dumps([{"msys": {"message_event": delivery}}]).encode()),
        samples_for("sparkpost").make_source()[0],
        RECEIVED,
    )
    assert result.rejected == []
    (event,) = result.events
    assert event.metadata == {}
    assert event.tags == (("vip",) if extra == {"rcpt_tags": "vip"} else ())
    assert event.provider_event_id is None


def test_wrong_content_type_is_refused() -> None:
    """SparkPost posts JSON; anything else is refused."""
    with pytest.raises(ContentTypeError):
        ADAPTER.check_content_type(unsigned(b"[]", "multipart/form-data"))


# --- transport authentication -------------------------------------------------------------


async def test_basic_auth_verifies_and_wrong_or_missing_fails() -> None:
    """Configured basic auth passes; other credentials are invalid, none are missing."""
    source, material = samples_for("sparkpost").make_source()
    request = samples_for("sparkpost").signed_request(
        source, material, fixture("all_events"), now=NOW
    )
    await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    other, _ = samples_for("sparkpost").make_source()
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(
            samples_for("sparkpost").signed_request(other, None, b"[]", now=NOW),
            source,
            VerifyContext(now=NOW),
        )
    assert info.value.reason == "invalid"
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(unsigned(b"[]"), source, VerifyContext(now=NOW))
    assert info.value.reason == "missing"


async def test_bearer_token_from_oauth_is_accepted() -> None:
    """A bearer token source (SparkPost's OAuth2 option) accepts its token."""
    source, material = samples_for("sparkpost").make_source(basic_auth=None, bearer_token="abc123")
    request = samples_for("sparkpost").signed_request(source, material, b"[]", now=NOW)
    await ADAPTER.verify(request, source, VerifyContext(now=NOW))


async def test_source_without_credentials_fails_closed() -> None:
    """With no credentials and no allow_unauthenticated every request is refused."""
    source, _ = samples_for("sparkpost").make_source(basic_auth=None)
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(unsigned(b"[]"), source, VerifyContext(now=NOW))
    assert info.value.reason == "missing"


# --- helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "event_type"),
    [
        ("delivery", EventType.DELIVERED),
        ("bounce", EventType.BOUNCED),
        ("delay", EventType.DEFERRED),
        ("click", EventType.CLICKED),
        ("list_unsubscribe", EventType.UNSUBSCRIBED),
    ],
)
async def test_example_body_round_trips(event: str, event_type: EventType) -> None:
    """example_body builds `count` events of a type, with distinct keys across seeds."""
    source, material = samples_for("sparkpost").make_source("load")
    keys: set[str] = set()
    for seed in (0, 1):
        request = samples_for("sparkpost").signed_request(
            source,
            material,
            samples_for("sparkpost").example_body(4, seed=seed, event=event),
            now=NOW,
        )
        assert request.url == "http://127.0.0.1:8000/webhooks/sparkpost/load"
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))
        events = ADAPTER.parse(request, source, RECEIVED).events
        assert [e.event_type for e in events] == [event_type] * 4
        keys.update(e.dedup_key for e in events)
    assert len(keys) == 8


@pytest.mark.parametrize(
    ("name", "esp_event", "reason"),
    [
        ("bounce_auto_reply", "bounce", "Auto-Reply"),
        ("out_of_band_challenge_response", "out_of_band", "Challenge-Response"),
    ],
)
def test_auto_reply_and_challenge_response_classes_are_not_bounces(
    name: str, esp_event: str, reason: str
) -> None:
    """Bounce classes 60 (Auto-Reply) and 100 (Challenge-Response) are a mailbox answering:
    auto_replied, with no bounce class, the class name as reason, the text as diagnostic."""
    (event,) = parse(fixture(name))
    assert event.esp_event == esp_event
    assert event.event_type is EventType.AUTO_REPLIED
    assert event.bounce_class is None
    assert event.reason == reason
    assert event.diagnostic == json.loads(fixture(name))[0]["msys"]["message_event"]["raw_reason"]


def test_relay_messages_at_the_tracking_url_are_a_control_message() -> None:
    """A batch of relay_message items (inbound relay, a received email) is recognised: no
    event, an inbound_message control message (it used to be a 400: no 'type')."""
    source, _ = samples_for("sparkpost").make_source()
    result = ADAPTER.parse(unsigned(fixture("relay_message")), source, RECEIVED)
    assert result.events == []
    assert result.control is not None and result.control.kind == "inbound_message"
    assert result.control.detail == {"count": 1}
