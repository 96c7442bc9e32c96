"""SendGrid adapter: ECDSA signature verification and event normalization."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from handlers import sendgrid
from handlers.base import (
    AuthError,
    ContentTypeError,
    PayloadError,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import BounceClass, EventType, content_dedup_key
from hookline_testing import samples_for
from tests.unit.handlers._isolation import check_bad_item_is_rejected_alone

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sendgrid"
NOW = datetime(2023, 11, 14, 22, 20, tzinfo=UTC)
RECEIVED = NOW + timedelta(seconds=1)
ADAPTER = sendgrid.ADAPTER


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def unsigned(body: bytes, content_type: str = "application/json") -> WebhookRequest:
    return WebhookRequest(
        "POST", "http://hookline/webhooks/sendgrid/test", {"content-type": content_type}, body
    )


def parse(body: bytes) -> list[Any]:
    source, _ = samples_for("sendgrid").make_source()
    return ADAPTER.parse(unsigned(body), source, RECEIVED).events


# --- normalization ------------------------------------------------------------------------

EXPECTED = [
    ("processed", EventType.QUEUED, None, False),
    ("deferred", EventType.DEFERRED, None, False),
    ("delivered", EventType.DELIVERED, None, False),
    ("open", EventType.OPENED, None, False),
    ("open", EventType.OPENED, None, True),
    ("click", EventType.CLICKED, None, False),
    ("bounce", EventType.BOUNCED, BounceClass.HARD, False),
    ("bounce", EventType.BOUNCED, BounceClass.SOFT, False),
    ("dropped", EventType.DROPPED, None, False),
    ("spamreport", EventType.COMPLAINED, None, False),
    ("unsubscribe", EventType.UNSUBSCRIBED, None, False),
    ("group_unsubscribe", EventType.UNSUBSCRIBED, None, False),
    ("group_resubscribe", EventType.RESUBSCRIBED, None, False),
]


@pytest.mark.parametrize(("index", "expected"), list(enumerate(EXPECTED)))
def test_every_documented_event_maps_to_its_normalized_type(
    index: int, expected: tuple[str, EventType, BounceClass | None, bool]
) -> None:
    """Each SendGrid event name gets the project's normalized type, bounce class and
    machine-open flag; the ESP's own name is kept in esp_event."""
    esp_event, event_type, bounce_class, machine_open = expected
    event = parse(fixture("all_events.json"))[index]
    assert event.esp_event == esp_event
    assert event.event_type is event_type
    assert event.bounce_class == bounce_class
    assert event.machine_open is machine_open


def test_batch_yields_one_event_per_item_with_ids_and_raw() -> None:
    """A batch becomes one event per array item; ids, message id, time and raw are kept."""
    raw_items = json.loads(fixture("all_events.json"))
    events = parse(fixture("all_events.json"))
    assert len(events) == len(raw_items) == 13
    delivered = events[2]
    assert delivered.provider == "sendgrid"
    assert delivered.source == "test"
    assert delivered.recipient == "alex@example.com"
    assert delivered.message_id == "14c5d75ce93.dfd.64b469", "the X-Message-Id, dots and all"
    assert delivered.provider_event_id == "rWVYmVk90MjZJ9iohOBa3w=="
    assert delivered.dedup_key == "sendgrid:rWVYmVk90MjZJ9iohOBa3w=="
    assert delivered.occurred_at == datetime.fromtimestamp(1700000003, tz=UTC)
    assert delivered.received_at == RECEIVED
    assert delivered.diagnostic == "250 OK"
    assert delivered.smtp_status == "250"
    assert delivered.ip == "167.89.17.173"
    assert delivered.tags == ("cat facts",)
    assert delivered.metadata == {"order_id": "A-1001"}
    assert delivered.raw == raw_items[2]
    assert len({e.dedup_key for e in events}) == len(events)


def test_bounce_keeps_status_diagnostic_and_classification() -> None:
    """A bounce keeps SendGrid's status, the MTA text and its bounce_classification."""
    hard, soft = parse(fixture("all_events.json"))[6:8]
    assert hard.smtp_status == "5.0.0"
    assert hard.diagnostic == "500 unknown recipient"
    assert hard.reason == "Invalid Address"
    assert soft.smtp_status == "5.7.1"
    assert soft.reason == "Reputation"
    assert soft.recipient == "blocked@example.com"


def test_dropped_and_deferred_keep_reason_and_response() -> None:
    """dropped keeps SendGrid's suppression reason; deferred keeps the MTA response."""
    events = parse(fixture("all_events.json"))
    deferred, dropped = events[1], events[8]
    assert deferred.diagnostic == "400 4.2.2 try again later"
    assert deferred.smtp_status == "4.2.2"
    assert dropped.reason == "Bounced Address"
    assert dropped.smtp_status == "5.0.0"


def test_click_and_open_keep_url_user_agent_and_ip() -> None:
    """Clicks carry the URL; opens and clicks carry the user agent and IP."""
    events = parse(fixture("all_events.json"))
    click = events[5]
    assert click.url == "http://www.sendgrid.com/"
    assert click.ip == "255.255.255.255"
    assert click.user_agent is not None and click.user_agent.startswith("Mozilla/4.0")
    assert events[4].machine_open is True
    assert events[4].url is None


def test_custom_args_campaign_and_category_list() -> None:
    """Non-standard top-level keys are custom args; marketing campaign name is the campaign;
    a category list becomes the tags."""
    (event,) = parse(fixture("marketing_delivered.json"))
    assert event.metadata == {"tenant": "acme", "plan": "pro"}
    assert event.campaign == "Autumn sale"
    assert event.tags == ("newsletter", "weekly")
    assert event.message_id == "LRzXl66dQsCxv6GK4LdZ9Q"


def test_unknown_event_is_kept_as_unknown() -> None:
    """An event name SendGrid may add later is stored as unknown, not refused."""
    body = b'[{"email":"a@example.com","event":"machine_learning","timestamp":1700000000}]'
    (event,) = parse(body)
    assert event.event_type is EventType.UNKNOWN
    assert event.esp_event == "machine_learning"


def test_event_without_id_or_timestamp_gets_content_key_and_received_time() -> None:
    """Without sg_event_id the dedup key hashes the raw event; without a timestamp the
    event time falls back to the receive time."""
    raw = {"email": "a@example.com", "event": "delivered"}
    (event,) = parse(json.dumps([raw]).encode())
    assert event.dedup_key == content_dedup_key("sendgrid", raw)
    assert event.provider_event_id is None
    assert event.occurred_at == RECEIVED


def test_empty_batch_yields_no_events() -> None:
    """An empty array is valid and yields nothing."""
    assert parse(b"[]\r\n") == []


# --- malformed bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'[{"email":"a@example.com","event":"open"', "body"),
        (b"\xff\xfe[]", "body"),
        (b'[{"email":"a@example.com","event":"\xe9"}]', "body"),
        (b"{}", "body"),
        (b"42", "body"),
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
        (b"1", ""),
        (b'"open"', ""),
        (b'{"email":"a@example.com"}', ".event"),
        (b'{"event":"open"}', ".email"),
        (b'{"email":"a@example.com","event":"open","timestamp":"soon"}', ".timestamp"),
        (b'{"email":"a@example.com","event":"open","timestamp":1e30}', ".timestamp"),
        (b'{"email":"a@x.com","event":"open","timestamp":1' + b"0" * 400 + b"}", ".timestamp"),
        (b'{"email":"a@x.com","event":"open","timestamp":-5}', ".timestamp"),
        (b'{"email":"a@example.com","event":["open"]}', ".event"),
        (b'{"email":7,"event":"open"}', ".email"),
        (b'{"event":"open"}', ".email"),
    ],
)
def test_a_malformed_item_is_rejected_alone_and_the_rest_parsed(bad: bytes, suffix: str) -> None:
    """In a well-formed batch, an item of the wrong type or with a bad field becomes one
    RejectedItem naming the field; the other items are normalized exactly as on their own
    (the fast path's events for the good item equal the careful path's), and parse_item
    replays one item with the same normalization."""
    source, _ = samples_for("sendgrid").make_source()
    check_bad_item_is_rejected_alone(
        ADAPTER,
        source,
        lambda items: unsigned(b"[" + b",".join(items) + b"]\r\n"),
        good=b'{"email":"a@example.com","event":"open","sg_event_id":"e1","timestamp":1700000000}',
        bad=bad,
        suffix=suffix,
        received_at=RECEIVED,
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"category": {"a": 1}},
        {"sg_machine_open": "maybe"},
        {"ip": ["203.0.113.9"]},
        {"sg_event_id": {"id": 1}},
        {"useragent": False},
    ],
)
def test_optional_fields_of_the_wrong_type_read_as_absent(extra: dict[str, Any]) -> None:
    """Unified strictness policy (handlers._common): an optional field of the wrong type is
    treated as absent and the event is stored (the careful path), where the item used to be
    rejected; raw keeps the value as sent."""
    source, _ = samples_for("sendgrid").make_source()
    item = {"email": "a@example.com", "event": "open", "timestamp": 1700000000, **extra}
    result = ADAPTER.parse(unsigned(json.dumps([item]).encode()), source, RECEIVED)
    assert result.rejected == []
    (event,) = result.events
    assert event.event_type is EventType.OPENED
    assert (event.tags, event.machine_open, event.ip, event.user_agent) == ((), False, None, None)
    assert event.provider_event_id is None
    assert event.raw == item


def test_wrong_content_type_is_refused() -> None:
    """SendGrid posts JSON; a form post is refused with ContentTypeError."""
    with pytest.raises(ContentTypeError):
        ADAPTER.check_content_type(unsigned(b"[]", "application/x-www-form-urlencoded"))
    ADAPTER.check_content_type(unsigned(b"[]", "application/json; charset=utf-8"))


# --- signature ----------------------------------------------------------------------------


async def test_valid_signature_over_exact_fixture_bytes_verifies() -> None:
    """The signature covers timestamp + the exact raw body, trailing CRLF included."""
    source, key = samples_for("sendgrid").make_source()
    body = fixture("all_events.json")
    assert body.endswith(b"\r\n")
    request = samples_for("sendgrid").signed_request(source, key, body, now=NOW)
    await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    assert len(ADAPTER.parse(request, source, RECEIVED).events) == 13


async def test_pem_verification_key_is_accepted() -> None:
    """A PEM public key works as signing_key as well as base64 DER."""
    _, key = samples_for("sendgrid").make_source()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    source, _ = samples_for("sendgrid").make_source(signing_key=pem.decode())
    request = samples_for("sendgrid").signed_request(source, key, b"[]\r\n", now=NOW)
    await ADAPTER.verify(request, source, VerifyContext(now=NOW))


async def test_tampered_body_is_invalid() -> None:
    """Changing one byte of the body (even the trailing CRLF) breaks the signature."""
    source, key = samples_for("sendgrid").make_source()
    request = samples_for("sendgrid").signed_request(
        source, key, fixture("all_events.json"), now=NOW
    )
    tampered = WebhookRequest(request.method, request.url, request.headers, request.body[:-2])
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(tampered, source, VerifyContext(now=NOW))
    assert info.value.reason == "invalid"


async def test_signature_from_another_key_is_invalid() -> None:
    """A request signed with a different key does not verify."""
    source, _ = samples_for("sendgrid").make_source()
    _, other_key = samples_for("sendgrid").make_source()
    request = samples_for("sendgrid").signed_request(source, other_key, b"[]\r\n", now=NOW)
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    assert info.value.reason == "invalid"


async def test_timestamp_header_is_covered_by_the_signature() -> None:
    """Replacing the timestamp header with another recent value breaks the signature."""
    source, key = samples_for("sendgrid").make_source()
    request = samples_for("sendgrid").signed_request(source, key, b"[]\r\n", now=NOW)
    headers = dict(request.headers)
    headers[sendgrid.TIMESTAMP_HEADER] = str(int(NOW.timestamp()) + 1)
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(
            WebhookRequest("POST", request.url, headers, request.body),
            source,
            VerifyContext(now=NOW),
        )
    assert info.value.reason == "invalid"


@pytest.mark.parametrize("header", [sendgrid.SIGNATURE_HEADER, sendgrid.TIMESTAMP_HEADER])
async def test_missing_signature_headers(header: str) -> None:
    """Without either signature header the request is refused as missing."""
    source, key = samples_for("sendgrid").make_source()
    request = samples_for("sendgrid").signed_request(source, key, b"[]\r\n", now=NOW)
    headers = {k: v for k, v in request.headers.items() if k != header}
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(
            WebhookRequest("POST", request.url, headers, request.body),
            source,
            VerifyContext(now=NOW),
        )
    assert info.value.reason == "missing"


@pytest.mark.parametrize(
    ("header", "value"),
    [(sendgrid.SIGNATURE_HEADER, "not base64!"), (sendgrid.TIMESTAMP_HEADER, "yesterday")],
)
async def test_malformed_signature_headers_are_invalid(header: str, value: str) -> None:
    """Garbage in the signature or timestamp header is invalid, never a crash."""
    source, key = samples_for("sendgrid").make_source()
    request = samples_for("sendgrid").signed_request(source, key, b"[]\r\n", now=NOW)
    headers = {**request.headers, header: value}
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(
            WebhookRequest("POST", request.url, headers, request.body),
            source,
            VerifyContext(now=NOW),
        )
    assert info.value.reason == "invalid"


@pytest.mark.parametrize("skew", [timedelta(seconds=-301), timedelta(seconds=301)])
async def test_signature_outside_replay_window_is_stale(skew: timedelta) -> None:
    """A correctly signed request older (or newer) than the replay window is stale."""
    source, key = samples_for("sendgrid").make_source(replay_window_seconds=300)
    request = samples_for("sendgrid").signed_request(source, key, b"[]\r\n", now=NOW + skew)
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    assert info.value.reason == "stale"
    await ADAPTER.verify(request, source, VerifyContext(now=NOW + skew))


async def test_unparseable_signing_key_fails_closed() -> None:
    """A misconfigured signing key refuses requests instead of accepting them."""
    source, key = samples_for("sendgrid").make_source(signing_key="bm90IGEga2V5")
    request = samples_for("sendgrid").signed_request(source, key, b"[]\r\n", now=NOW)
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    assert info.value.reason == "invalid"
    with pytest.raises(ValueError, match="verification key"):
        sendgrid.load_verification_key("bm90IGEga2V5")


async def test_basic_auth_is_checked_on_top_of_the_signature() -> None:
    """When the source also configures basic auth, a signed request without it fails."""
    source, key = samples_for("sendgrid").make_source(basic_auth="hook:s3cret")
    request = samples_for("sendgrid").signed_request(source, key, b"[]\r\n", now=NOW)
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    assert info.value.reason == "missing"
    auth = "Basic " + base64.b64encode(b"hook:s3cret").decode()
    authed = WebhookRequest(
        "POST", request.url, {**request.headers, "authorization": auth}, request.body
    )
    await ADAPTER.verify(authed, source, VerifyContext(now=NOW))


# --- helpers ------------------------------------------------------------------------------


async def test_example_body_is_distinct_per_seed_and_verifies() -> None:
    """example_body yields `count` events with distinct dedup keys across seeds, and
    signed_request produces a request the adapter accepts."""
    source, key = samples_for("sendgrid").make_source("load")
    keys: set[str] = set()
    for seed in (0, 1):
        body = samples_for("sendgrid").example_body(3, seed=seed, event="bounce")
        request = samples_for("sendgrid").signed_request(source, key, body, now=NOW)
        assert request.url == "http://127.0.0.1:8000/webhooks/sendgrid/load"
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))
        events = ADAPTER.parse(request, source, RECEIVED).events
        assert [e.event_type for e in events] == [EventType.BOUNCED] * 3
        assert all(e.bounce_class is BounceClass.HARD for e in events)
        keys.update(e.dedup_key for e in events)
    assert len(keys) == 6


def test_a_filter_host_or_empty_id_is_never_a_message_id() -> None:
    """Dropped events whose sg_message_id starts with the filter host name get no message
    id from it (unrelated messages share it): the smtp-id's local part when there is one,
    else none; an empty sg_message_id is none too."""
    events = parse(fixture("dropped_filter_host.json"))
    assert [e.message_id for e in events] == [None, None, "Xk3pQ7rTSyWc2ZbmV9dA1g", None]
    assert [e.event_type for e in events] == [EventType.DROPPED] * 4


@pytest.mark.parametrize(
    ("sg_message_id", "smtp_id", "expected"),
    [
        (
            "W86EgYT6SQKk0lRflfLRsA.filterdrecv-p3las1-5bf6-18-5EDA8C31-8C.0",
            None,
            "W86EgYT6SQKk0lRflfLRsA",
        ),
        (
            "LRzXl66dQsCxv6GK4LdZ9Q.recvd-5f8f9c6f7-abcde-1-64F0C0DE-2.0",
            None,
            "LRzXl66dQsCxv6GK4LdZ9Q",
        ),
        ("14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0", None, "14c5d75ce93.dfd.64b469"),
        ("W86EgYT6SQKk0lRflfLRsA", None, "W86EgYT6SQKk0lRflfLRsA"),
        (
            "filter0093p1las1.13823.5A8A7E3D1E.0",
            "<14c5d75ce93.dfd.64b469@ismtpd-555>",
            "14c5d75ce93.dfd.64b469",
        ),
        ("recvd-5f8f9c6f7-abcde.0", None, None),
        ("", "<W86EgYT6SQKk0lRflfLRsA@x>", "W86EgYT6SQKk0lRflfLRsA"),
        (None, "<ismtpd0001p1lon1@sendgrid.net>", None),
        (None, "not an id", None),
        (None, None, None),
    ],
)
def test_message_id_fallback_order(
    sg_message_id: str | None, smtp_id: str | None, expected: str | None
) -> None:
    """sg_message_id up to its host segment, then smtp-id's local part, then none; a host
    name or an empty value is never the answer."""
    assert sendgrid.message_id_of(sg_message_id, smtp_id) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("1699999990", datetime.fromtimestamp(1699999990, tz=UTC)),
        (None, RECEIVED),
        ("not-a-time", RECEIVED),
    ],
)
def test_an_undated_event_takes_the_signature_time_before_the_receipt_time(
    header: str | None, expected: datetime
) -> None:
    """Event time first; without one, the envelope's (the signed timestamp header: when
    SendGrid sent the batch); the receipt time only when neither is usable."""
    body = b'[{"email":"a@example.com","event":"delivered"},'
    body += b'{"email":"b@example.com","event":"delivered","timestamp":1699999900}]'
    headers = {"content-type": "application/json"}
    if header is not None:
        headers[sendgrid.TIMESTAMP_HEADER] = header
    request = WebhookRequest("POST", "http://hookline/webhooks/sendgrid/test", headers, body)
    source, _ = samples_for("sendgrid").make_source()
    undated, dated = ADAPTER.parse(request, source, RECEIVED).events
    assert undated.occurred_at == expected
    assert dated.occurred_at == datetime.fromtimestamp(1699999900, tz=UTC)


async def test_a_valid_signature_with_a_stray_character_is_invalid() -> None:
    """The signature header must be strict base64: the right signature with one stray
    character in it (which a lenient decoder would silently drop) is refused."""
    source, key = samples_for("sendgrid").make_source()
    request = samples_for("sendgrid").signed_request(source, key, b"[]\r\n", now=NOW)
    signature = request.headers[sendgrid.SIGNATURE_HEADER]
    await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    headers = {**request.headers, sendgrid.SIGNATURE_HEADER: signature[:8] + "!" + signature[8:]}
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(
            WebhookRequest("POST", request.url, headers, request.body),
            source,
            VerifyContext(now=NOW),
        )
    assert info.value.reason == "invalid"
