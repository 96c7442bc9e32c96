"""Mailgun adapter: HMAC signature block, nonce for replay detection, normalization."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from handlers import mailgun
from handlers.base import (
    AuthError,
    ContentTypeError,
    PayloadError,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import BounceClass, EmailEvent, EventType, content_dedup_key
from hookline_testing import samples_for

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mailgun"
NOW = datetime(2023, 11, 14, 22, 20, tzinfo=UTC)
RECEIVED = NOW + timedelta(seconds=1)
ADAPTER = mailgun.ADAPTER


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def unsigned(body: bytes, content_type: str = "application/json") -> WebhookRequest:
    return WebhookRequest(
        "POST", "http://hookline/webhooks/mailgun/test", {"content-type": content_type}, body
    )


def parse_one(body: bytes) -> EmailEvent:
    source, _ = samples_for("mailgun").make_source()
    (event,) = ADAPTER.parse(unsigned(body), source, RECEIVED).events
    return event


# --- normalization ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "event_type", "bounce_class", "machine_open"),
    [
        ("accepted", EventType.QUEUED, None, False),
        ("rejected", EventType.DROPPED, None, False),
        ("delivered", EventType.DELIVERED, None, False),
        ("failed_permanent", EventType.BOUNCED, BounceClass.HARD, False),
        ("failed_temporary", EventType.DEFERRED, None, False),
        ("failed_suppress_bounce", EventType.DROPPED, None, False),
        ("failed_old", EventType.BOUNCED, BounceClass.SOFT, False),
        ("opened", EventType.OPENED, None, False),
        ("opened_apple_bot", EventType.OPENED, None, True),
        ("clicked", EventType.CLICKED, None, False),
        ("unsubscribed", EventType.UNSUBSCRIBED, None, False),
        ("complained", EventType.COMPLAINED, None, False),
    ],
)
def test_every_documented_event_maps_to_its_normalized_type(
    name: str, event_type: EventType, bounce_class: BounceClass | None, machine_open: bool
) -> None:
    """Each Mailgun event (and each failed severity/reason) gets its normalized type."""
    event = parse_one(fixture(name))
    raw = json.loads(fixture(name))["event-data"]
    assert event.event_type is event_type
    assert event.bounce_class == bounce_class
    assert event.machine_open is machine_open
    assert event.esp_event == raw["event"]
    assert event.raw == raw


def test_delivered_fields_ids_and_metadata() -> None:
    """message_id is the Message-Id without brackets, the event id is event-data.id, and
    user-variables / tags become metadata / tags."""
    event = parse_one(fixture("delivered"))
    assert event.provider == "mailgun"
    assert event.recipient == "alice@example.com"
    assert event.message_id == "20231114221320.1.2B5F8A9C@mg.example.org"
    assert event.provider_event_id == "CPgfbmQMTCKtHW6uIWtuVe"
    assert event.dedup_key == "mailgun:CPgfbmQMTCKtHW6uIWtuVe"
    assert event.occurred_at == datetime.fromtimestamp(1699999992.1, tz=UTC)
    assert event.smtp_status == "250"
    assert event.diagnostic == "OK"
    assert event.tags == ("my_tag_1", "my_tag_2")
    assert event.metadata == {"my_var_1": "Mailgun Variable #1", "my-var-2": "awesome"}


def test_permanent_failure_keeps_enhanced_code_message_and_reason() -> None:
    """A hard bounce keeps the enhanced status code, the MTA message and Mailgun's reason."""
    event = parse_one(fixture("failed_permanent"))
    assert event.smtp_status == "5.1.1"
    assert event.diagnostic == "No Such User Here"
    assert event.reason == "bounce"


def test_suppressed_failure_is_dropped_with_its_reason() -> None:
    """A suppress-bounce failure was never attempted: dropped, reason kept, no bounce class."""
    event = parse_one(fixture("failed_suppress_bounce"))
    assert event.reason == "suppress-bounce"
    assert event.smtp_status == "605"
    assert event.diagnostic == "Not delivering to previously bounced address"


def test_temporary_failure_extracts_status_from_message() -> None:
    """A deferral keeps the MTA text and the most specific status code in it."""
    event = parse_one(fixture("failed_temporary"))
    assert event.smtp_status == "452"
    assert event.diagnostic is not None and "over quota" in event.diagnostic


def test_rejected_event_takes_recipient_from_to_header_and_reject_reason() -> None:
    """rejected carries no recipient field: the To header's address is used."""
    event = parse_one(fixture("rejected"))
    assert event.recipient == "alice@example.com"
    assert event.reason is not None and event.reason.startswith("Sandbox subdomains")


def test_click_open_fields_and_campaign() -> None:
    """Clicks carry url, IP, user agent and the first campaign's name."""
    event = parse_one(fixture("clicked"))
    assert event.url == "https://example.com/receipts/1"
    assert event.ip == "50.56.129.169"
    assert event.user_agent == "Mozilla/5.0 (X11; Linux x86_64)"
    assert event.campaign == "Autumn sale"
    assert parse_one(fixture("opened_apple_bot")).user_agent == "Mozilla/5.0"


def test_unknown_event_and_missing_id_or_timestamp() -> None:
    """An unmapped event is unknown; no id means a content hash; no timestamp means the
    receive time."""
    data = {"event": "stored", "recipient": "a@example.com"}
    event = parse_one(json.dumps({"event-data": data}).encode())
    assert event.event_type is EventType.UNKNOWN
    assert event.dedup_key == content_dedup_key("mailgun", data)
    assert event.occurred_at == RECEIVED
    assert event.message_id is None


def test_parse_returns_token_nonce_and_body_digest() -> None:
    """The token is the nonce and the digest is SHA-256 of the exact raw body."""
    source, _ = samples_for("mailgun").make_source()
    body = fixture("delivered")
    result = ADAPTER.parse(unsigned(body), source, RECEIVED)
    assert result.nonce == "a8ce0edb2dd8301dcecea2f8d48ac6d2d31de8fd88a8bd5d6f"
    assert result.nonce_digest == hashlib.sha256(body).hexdigest()


def test_same_token_with_other_content_has_another_digest() -> None:
    """A captured signature reused on altered event-data keeps the nonce but not the digest,
    which is what lets the gateway tell a forgery from a redelivery."""
    source, key = samples_for("mailgun").make_source()
    original = samples_for("mailgun").signed_request(source, key, fixture("delivered"), now=NOW)
    forged_body = json.loads(original.body)
    forged_body["event-data"]["recipient"] = "mallory@example.com"
    forged = WebhookRequest(
        "POST", original.url, original.headers, json.dumps(forged_body).encode()
    )
    first = ADAPTER.parse(original, source, RECEIVED)
    second = ADAPTER.parse(forged, source, RECEIVED)
    assert first.nonce == second.nonce
    assert first.nonce_digest != second.nonce_digest


# --- malformed bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"event-data": {"event": "delivered"', "body"),
        (b'{"event-data": {"event": "d\xe9livr\xe9"}}', "body"),
        (b"[]", "body"),
        (b"7", "body"),
        (b"{}", "event-data"),
        (b'{"event-data": []}', "event-data"),
        (b'{"event-data": {}}', "event-data.event"),
        (
            b'{"event-data": {"event": "opened", "recipient": "a@example.com", '
            b'"timestamp": "noon"}}',
            "event-data.timestamp",
        ),
        (
            b'{"event-data": {"event": "opened", "message": {"headers": {"message-id": 5.5e400}}}}',
            "body",
        ),
        (b'{"event-data": {"event": "opened"}}', "event-data.recipient"),
        (b'{"event-data": {"event": "opened", "recipient": 7}}', "event-data.recipient"),
        (
            b'{"event-data": {"event": "rejected", "message": {"headers": {"to": ""}}}}',
            "event-data.recipient",
        ),
    ],
)
def test_bad_bodies_raise_payload_error_naming_the_field(body: bytes, field: str) -> None:
    """Truncated, non-UTF-8 and wrongly shaped bodies raise PayloadError naming the field."""
    source, _ = samples_for("mailgun").make_source()
    with pytest.raises(PayloadError) as info:
        ADAPTER.parse(unsigned(body), source, RECEIVED)
    assert info.value.field == field


@pytest.mark.parametrize(
    "extra",
    [
        {"message": "x"},
        {"message": {"headers": []}},
        {"user-variables": [1]},
        {"tags": [{}]},
        {"campaigns": [7]},
        {"delivery-status": 3},
        {"client-info": "bot"},
        {"url": {"href": "https://example.com"}},
    ],
)
def test_optional_fields_of_the_wrong_type_read_as_absent(extra: dict[str, Any]) -> None:
    """Unified strictness policy (handlers._common): an optional field of the wrong type is
    treated as absent and the event is stored, where it used to refuse the whole request
    (400, and Mailgun retries then drops the event)."""
    source, _ = samples_for("mailgun").make_source()
    data = {"event": "failed", "recipient": "a@example.com", "timestamp": 1700000000, **extra}
    body = json.dumps({"event-data": data}).encode()
    (event,) = ADAPTER.parse(unsigned(body), source, RECEIVED).events
    assert event.recipient == "a@example.com"
    assert event.raw == data
    assert event.tags == ()
    assert event.metadata == {}
    assert event.campaign is None
    assert event.url is None
    assert event.machine_open is False
    assert event.message_id is None


def test_wrong_content_type_is_refused() -> None:
    """Bodies Mailgun never posts are refused with ContentTypeError."""
    with pytest.raises(ContentTypeError):
        ADAPTER.check_content_type(unsigned(b"", "text/plain"))


def inbound_form(key: str, *, multipart: bool, extra: dict[str, str] | None = None) -> Any:
    """A received email as a Mailgun route forwards it, signed with ``key``."""
    fields = json.loads(fixture("inbound_route_fields"))
    timestamp, token = (
        str(int(NOW.timestamp())),
        "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
    )
    fields.update(timestamp=timestamp, token=token, signature=mailgun.sign(key, timestamp, token))
    fields.update(extra or {})
    if not multipart:
        return unsigned(urlencode(fields).encode(), "application/x-www-form-urlencoded")
    parts = [
        f'--B0UND\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    body = ("".join(parts) + "--B0UND--\r\n").encode()
    return unsigned(body, "multipart/form-data; boundary=B0UND")


@pytest.mark.parametrize("multipart", [True, False])
async def test_an_inbound_route_at_the_tracking_url_is_a_control_message(
    multipart: bool,
) -> None:
    """A received email forwarded by a Mailgun route (multipart or urlencoded, signed with
    the same key) verifies and is an inbound_message control message: no event (it used to
    be refused with 415, and Mailgun retries then disables the route)."""
    source, key = samples_for("mailgun").make_source()
    request = inbound_form(key, multipart=multipart)
    ADAPTER.check_content_type(request)
    await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    result = ADAPTER.parse(request, source, RECEIVED)
    assert result.events == []
    assert result.control is not None and result.control.kind == "inbound_message"
    assert result.nonce is not None


async def test_forms_must_be_signed_and_legacy_event_forms_stay_refused() -> None:
    """An unsigned or wrongly signed form is refused like any request; a signed legacy
    (pre-2018) form webhook with an event field is a PayloadError, not an event."""
    source, key = samples_for("mailgun").make_source()
    with pytest.raises(AuthError) as missing:
        await ADAPTER.verify(
            unsigned(b"recipient=a%40b.example&body-plain=hi", "application/x-www-form-urlencoded"),
            source,
            VerifyContext(now=NOW),
        )
    assert missing.value.reason == "missing"
    forged = inbound_form("not-the-key", multipart=True)
    with pytest.raises(AuthError) as invalid:
        await ADAPTER.verify(forged, source, VerifyContext(now=NOW))
    assert invalid.value.reason == "invalid"
    legacy = inbound_form(key, multipart=False, extra={"event": "delivered"})
    await ADAPTER.verify(legacy, source, VerifyContext(now=NOW))
    with pytest.raises(PayloadError):
        ADAPTER.parse(legacy, source, RECEIVED)


# --- signature ----------------------------------------------------------------------------


async def test_valid_signature_verifies() -> None:
    """A freshly signed fixture verifies and parses."""
    source, key = samples_for("mailgun").make_source()
    request = samples_for("mailgun").signed_request(
        source, key, fixture("failed_permanent"), now=NOW
    )
    await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    assert ADAPTER.parse(request, source, RECEIVED).events[0].event_type is EventType.BOUNCED


def test_signature_matches_mailgun_documented_algorithm() -> None:
    """The signature is hex HMAC-SHA256(key, timestamp + token), as Mailgun documents."""
    expected = hmac.new(b"key", b"1700000000" + b"tok", hashlib.sha256).hexdigest()
    assert mailgun.sign("key", "1700000000", "tok") == expected


async def test_wrong_key_is_invalid() -> None:
    """A block signed with another key is invalid."""
    source, _ = samples_for("mailgun").make_source()
    request = samples_for("mailgun").signed_request(
        source, "other-key", fixture("delivered"), now=NOW
    )
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    assert info.value.reason == "invalid"


async def test_altered_token_is_invalid() -> None:
    """Changing the token after signing breaks the signature."""
    source, key = samples_for("mailgun").make_source()
    request = samples_for("mailgun").signed_request(source, key, fixture("delivered"), now=NOW)
    body: dict[str, Any] = json.loads(request.body)
    body["signature"]["token"] = "f" * 50
    tampered = WebhookRequest("POST", request.url, request.headers, json.dumps(body).encode())
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(tampered, source, VerifyContext(now=NOW))
    assert info.value.reason == "invalid"


@pytest.mark.parametrize(
    "body",
    [
        b'{"event-data": {"event": "delivered"}}',
        b'{"signature": {"timestamp": "1", "token": "t"}, "event-data": {}}',
        b'{"signature": "abc"}',
        b"{not json",
        b"\xff",
    ],
)
async def test_missing_signature_block_is_missing(body: bytes) -> None:
    """No (complete) signature block, or no JSON at all, is a missing signature."""
    source, _ = samples_for("mailgun").make_source()
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(unsigned(body), source, VerifyContext(now=NOW))
    assert info.value.reason == "missing"


async def test_stale_signature_is_refused() -> None:
    """A correctly signed block outside the replay window is stale."""
    source, key = samples_for("mailgun").make_source(replay_window_seconds=300)
    request = samples_for("mailgun").signed_request(source, key, fixture("delivered"), now=NOW)
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(request, source, VerifyContext(now=NOW + timedelta(seconds=301)))
    assert info.value.reason == "stale"


async def test_fixture_signature_is_not_accepted_with_a_test_key() -> None:
    """The placeholder signature stored in the fixtures does not verify with a fresh key."""
    source, _ = samples_for("mailgun").make_source()
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(unsigned(fixture("delivered")), source, VerifyContext(now=NOW))
    assert info.value.reason == "invalid"


# --- helpers ------------------------------------------------------------------------------


async def test_example_body_single_event_distinct_per_seed() -> None:
    """example_body makes one event per request (count > 1 is refused), distinct per seed."""
    source, key = samples_for("mailgun").make_source("load")
    with pytest.raises(ValueError, match="one event"):
        samples_for("mailgun").example_body(2)
    keys = set()
    for seed in range(3):
        request = samples_for("mailgun").signed_request(
            source, key, samples_for("mailgun").example_body(seed=seed, event="opened"), now=NOW
        )
        assert request.url == "http://127.0.0.1:8000/webhooks/mailgun/load"
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))
        (event,) = ADAPTER.parse(request, source, RECEIVED).events
        assert event.event_type is EventType.OPENED
        keys.add(event.dedup_key)
    assert len(keys) == 3


def test_an_undated_event_takes_the_signature_time_before_the_receipt_time() -> None:
    """Event time first; without one, the envelope's (signature.timestamp: when Mailgun
    signed the request); the receipt time only when neither is usable."""
    source, _ = samples_for("mailgun").make_source()
    data = {"event": "delivered", "recipient": "a@example.com"}
    signed = {"timestamp": "1699999990", "token": "t" * 50, "signature": "0" * 64}
    body = json.dumps({"signature": signed, "event-data": data}).encode()
    (event,) = ADAPTER.parse(unsigned(body), source, RECEIVED).events
    assert event.occurred_at == datetime.fromtimestamp(1699999990, tz=UTC)
    dated = {**data, "timestamp": 1699999980.5}
    body = json.dumps({"signature": signed, "event-data": dated}).encode()
    (event,) = ADAPTER.parse(unsigned(body), source, RECEIVED).events
    assert event.occurred_at == datetime.fromtimestamp(1699999980.5, tz=UTC)
    body = json.dumps({"signature": {**signed, "timestamp": "soon"}, "event-data": data}).encode()
    (event,) = ADAPTER.parse(unsigned(body), source, RECEIVED).events
    assert event.occurred_at == RECEIVED


async def test_a_form_too_broken_to_carry_a_signature_is_missing_credentials() -> None:
    """A form body that cannot be decoded at all (multipart without its boundary) carries
    no signature: AuthError('missing') (401), never a pass and never a crash."""
    source, _ = samples_for("mailgun").make_source()
    broken = unsigned(b"--B0UND\r\nnot a part", "multipart/form-data")
    with pytest.raises(AuthError) as caught:
        await ADAPTER.verify(broken, source, VerifyContext(now=NOW))
    assert caught.value.reason == "missing"


def resigned(key: str, body: bytes, timestamp: Any) -> WebhookRequest:
    """``body`` with its signature block replaced by one signed at ``timestamp`` (kept
    as given: a JSON number or a string)."""
    document: dict[str, Any] = json.loads(body)
    token = "a" * 50
    document["signature"] = {
        "timestamp": timestamp,
        "token": token,
        "signature": mailgun.sign(key, str(timestamp), token),
    }
    return unsigned(json.dumps(document).encode())


async def test_a_timestamp_sent_as_a_json_number_verifies() -> None:
    """The signature block's timestamp may be a JSON number rather than a string: signed
    correctly, the request verifies like its string form."""
    source, key = samples_for("mailgun").make_source()
    at = int(NOW.timestamp())
    for timestamp in (at, str(at)):
        request = resigned(key, fixture("delivered"), timestamp)
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))


async def test_a_correctly_signed_but_unreadable_timestamp_is_invalid() -> None:
    """A timestamp that is signed correctly but is no epoch time (words, or far beyond
    any real date) is an invalid signature, not a missing one and not a crash."""
    source, key = samples_for("mailgun").make_source()
    for timestamp in ("soon", "1e300"):
        request = resigned(key, fixture("delivered"), timestamp)
        with pytest.raises(AuthError) as info:
            await ADAPTER.verify(request, source, VerifyContext(now=NOW))
        assert info.value.reason == "invalid"
