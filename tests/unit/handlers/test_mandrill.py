"""Mandrill: X-Mandrill-Signature verification and mandrill_events normalization."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from handlers import mandrill
from handlers.base import (
    AuthError,
    ContentTypeError,
    ParseResult,
    PayloadError,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import BounceClass, EventType
from hookline_testing import samples_for
from tests.unit.handlers._isolation import check_bad_item_is_rejected_alone

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "mandrill"
NOW = datetime(2025, 3, 4, 12, 0, tzinfo=UTC)
ADAPTER = mandrill.ADAPTER
URL = "https://hooks.example.com/webhooks/mandrill/test"


@pytest.fixture(scope="module")
def signing() -> tuple[SourceSpec, str]:
    source, key = samples_for("mandrill").make_source()
    return source, key


def events_file(name: str) -> list[dict[str, Any]]:
    data = json.loads((FIXTURES / name).read_text())
    assert isinstance(data, list)
    return data


def form(events: Any) -> bytes:
    """The body exactly as Mandrill posts it: one form field holding the JSON array."""
    return urlencode({"mandrill_events": json.dumps(events)}).encode()


def signed(signing: tuple[SourceSpec, str], body: bytes, url: str = URL) -> WebhookRequest:
    return samples_for("mandrill").signed_request(signing[0], signing[1], body, now=NOW, url=url)


async def verify(request: WebhookRequest, source: SourceSpec) -> None:
    await ADAPTER.verify(request, source, VerifyContext(now=NOW))


def parse(request: WebhookRequest, source: SourceSpec) -> ParseResult:
    return ADAPTER.parse(request, source, NOW)


# --- normalization --------------------------------------------------------------------------

MAPPING = {
    "send": (EventType.SENT, None),
    "delivered": (EventType.DELIVERED, None),
    "deferral": (EventType.DEFERRED, None),
    "hard_bounce": (EventType.BOUNCED, BounceClass.HARD),
    "soft_bounce": (EventType.BOUNCED, BounceClass.SOFT),
    "open": (EventType.OPENED, None),
    "click": (EventType.CLICKED, None),
    "spam": (EventType.COMPLAINED, None),
    "unsub": (EventType.UNSUBSCRIBED, None),
    "reject": (EventType.DROPPED, None),
}


async def test_every_documented_message_event_maps_to_its_normalized_type(
    signing: tuple[SourceSpec, str],
) -> None:
    """One batch with every message event Mandrill documents: one EmailEvent each, in
    order, with the normalized type, bounce class and Mandrill's event name."""
    raw_events = events_file("message_events.json")
    request = signed(signing, form(raw_events))
    await verify(request, signing[0])
    events = parse(request, signing[0]).events
    assert [e.esp_event for e in events] == [r["event"] for r in raw_events]
    assert set(MAPPING) == set(samples_for("mandrill").events) == {e.esp_event for e in events}
    for event, raw in zip(events, raw_events, strict=True):
        assert (event.event_type, event.bounce_class) == MAPPING[raw["event"]]
        assert event.provider == "mandrill"
        assert event.source == signing[0].name
        assert event.raw == raw
        assert event.occurred_at == datetime.fromtimestamp(raw["ts"], tz=UTC)


async def test_message_id_metadata_tags_and_campaign_come_from_msg(
    signing: tuple[SourceSpec, str],
) -> None:
    """msg._id is the message id (what the send API returned), msg.metadata the metadata,
    msg.tags the tags; a 'campaign' metadata value names the campaign."""
    events = parse(signed(signing, form(events_file("message_events.json"))), signing[0]).events
    send = events[0]
    assert send.message_id == "5a8f3c2e9b1d4e7fa6c0b2d4e6f8a1c3"
    assert send.recipient == "customer@example.com"
    assert send.metadata == {"customer_id": "c-1001", "campaign": "march-invoices"}
    assert send.tags == ("invoice", "monthly")
    assert send.campaign == "march-invoices"


async def test_bounces_deferrals_and_rejects_keep_their_diagnostics(
    signing: tuple[SourceSpec, str],
) -> None:
    """Bounce description and SMTP diagnostic are kept; a deferral reports its latest SMTP
    attempt; a reject names its recipient."""
    events = parse(signed(signing, form(events_file("message_events.json"))), signing[0]).events
    by_name = {e.esp_event: e for e in events}
    hard = by_name["hard_bounce"]
    assert (hard.reason, hard.smtp_status) == ("bad_mailbox", "5.1.1")
    assert hard.diagnostic is not None and hard.diagnostic.startswith("smtp;550 5.1.1")
    soft = by_name["soft_bounce"]
    assert (soft.reason, soft.smtp_status) == ("mailbox_full", "5.2.2")
    deferral = by_name["deferral"]
    assert deferral.diagnostic == "421 4.7.0 Try again later, closing connection."
    assert deferral.smtp_status == "4.7.0"
    assert by_name["delivered"].smtp_status == "2.0.0"
    assert by_name["reject"].recipient == "blocked@example.com"


async def test_open_and_click_carry_address_agent_and_link(
    signing: tuple[SourceSpec, str],
) -> None:
    """Opens and clicks keep ip and user agent; clicks keep the URL."""
    events = parse(signed(signing, form(events_file("message_events.json"))), signing[0]).events
    by_name = {e.esp_event: e for e in events}
    assert by_name["open"].ip == "203.0.113.7"
    assert by_name["open"].user_agent is not None
    assert by_name["open"].url is None
    assert by_name["click"].url == "https://example.com/invoices/2025-03"


async def test_dedup_keys_are_distinct_per_event_and_stable_per_body(
    signing: tuple[SourceSpec, str],
) -> None:
    """Events of one message differ by event and time; a redelivered batch gives the same
    keys."""
    request = signed(signing, form(events_file("message_events.json")))
    first = [e.dedup_key for e in parse(request, signing[0]).events]
    again = [e.dedup_key for e in parse(request, signing[0]).events]
    assert first == again
    assert len(set(first)) == len(first)
    assert all(key.startswith("mandrill:sha256:") for key in first)


async def test_two_clicks_in_the_same_second_on_different_links_are_distinct(
    signing: tuple[SourceSpec, str],
) -> None:
    """The clicked URL is part of a click's identity."""
    click = next(e for e in events_file("message_events.json") if e["event"] == "click")
    other = json.loads(json.dumps(click))
    other["url"] = "https://example.com/other"
    events = parse(signed(signing, form([click, other])), signing[0]).events
    assert events[0].dedup_key != events[1].dedup_key


async def test_sync_events_are_stored_as_unknown(signing: tuple[SourceSpec, str]) -> None:
    """Blacklist/whitelist sync events are not about a sent email: unknown, with the
    address and Mandrill's reason."""
    raw_events = events_file("sync_events.json")
    request = signed(signing, form(raw_events))
    await verify(request, signing[0])
    events = parse(request, signing[0]).events
    assert [(e.event_type, e.esp_event, e.recipient) for e in events] == [
        (EventType.UNKNOWN, "blacklist:add", "customer@example.com"),
        (EventType.UNKNOWN, "blacklist:remove", "customer@example.com"),
        (EventType.UNKNOWN, "whitelist:add", "vip@example.com"),
    ]
    assert events[0].reason == "hard-bounce"
    assert {e.message_id for e in events} == {None}
    assert len({e.dedup_key for e in events}) == 3


async def test_inbound_batch_is_a_control_message_and_unknown_events_are_kept(
    signing: tuple[SourceSpec, str],
) -> None:
    """A batch of inbound messages (an inbound route pointed at the tracking URL) is an
    inbound_message control message with no events; event names Mandrill adds later are
    kept as unknown, never refused."""
    inbound = events_file("inbound_event.json")
    result = parse(signed(signing, form(inbound)), signing[0])
    assert result.events == []
    assert result.control is not None and result.control.kind == "inbound_message"
    assert result.control.detail == {"count": 1}
    future = [{"event": "something_new", "ts": 1741082400, "_id": "abc"}]
    events = parse(signed(signing, form(future)), signing[0]).events
    assert [(e.event_type, e.esp_event, e.recipient) for e in events] == [
        (EventType.UNKNOWN, "something_new", None),
    ]


async def test_recorded_form_body_parses_exactly_as_sent(signing: tuple[SourceSpec, str]) -> None:
    """The fixture body is the literal form encoding Mandrill posts."""
    body = (FIXTURES / "batch.form").read_bytes()
    request = signed(signing, body)
    await verify(request, signing[0])
    assert [e.event_type for e in parse(request, signing[0]).events] == [
        EventType.SENT,
        EventType.DELIVERED,
        EventType.DEFERRED,
    ]


async def test_empty_batch_and_full_batch(signing: tuple[SourceSpec, str]) -> None:
    """An empty array (Mandrill's test post) yields no events; 1000 events all come out."""
    assert parse(signed(signing, form([])), signing[0]).events == []
    body = samples_for("mandrill").example_body(1000, seed=7)
    request = signed(signing, body)
    await verify(request, signing[0])
    events = parse(request, signing[0]).events
    assert len(events) == 1000
    assert len({e.dedup_key for e in events}) == 1000


@pytest.mark.parametrize("event", samples_for("mandrill").events)
async def test_example_bodies_round_trip_for_every_event(
    signing: tuple[SourceSpec, str], event: str
) -> None:
    """The load-test generator produces verifiable bodies for every message event."""
    request = signed(signing, samples_for("mandrill").example_body(2, seed=1, event=event))
    await verify(request, signing[0])
    events = parse(request, signing[0]).events
    assert [e.event_type for e in events] == [MAPPING[event][0]] * 2


# --- signature ------------------------------------------------------------------------------


async def test_signature_is_hmac_sha1_over_url_and_sorted_params(
    signing: tuple[SourceSpec, str],
) -> None:
    """The header equals base64(HMAC-SHA1(key, url + name + value ...)), computed here
    independently, with params sorted by name."""
    source, key = signing
    body = urlencode({"mandrill_events": "[]", "a_first": "1"}).encode()
    request = signed(signing, body)
    expected = base64.b64encode(
        hmac.new(key.encode(), f"{URL}a_first1mandrill_events[]".encode(), hashlib.sha1).digest()
    ).decode()
    assert request.headers["x-mandrill-signature"] == expected
    await verify(request, source)


async def test_configured_url_is_what_is_signed(signing: tuple[SourceSpec, str]) -> None:
    """Behind a proxy the request URL differs from the one Mandrill signed: source.url
    wins; without it a signature for another URL is invalid."""
    source, key = signing
    public = replace(source, url=URL)
    request = samples_for("mandrill").signed_request(public, key, form([]), now=NOW, url=URL)
    internal = replace(request, url="http://10.0.0.5:8000/webhooks/mandrill/test")
    await verify(internal, public)
    with pytest.raises(AuthError) as caught:
        await verify(internal, source)
    assert caught.value.reason == "invalid"


async def test_tampered_body_or_wrong_key_is_invalid(signing: tuple[SourceSpec, str]) -> None:
    """Any change to the form or another key fails verification."""
    source, _ = signing
    request = signed(signing, form(events_file("message_events.json")))
    tampered = replace(request, body=request.body.replace(b"customer", b"attacker", 1))
    with pytest.raises(AuthError) as caught:
        await verify(tampered, source)
    assert caught.value.reason == "invalid"
    with pytest.raises(AuthError) as caught:
        await verify(request, replace(source, signing_key="another-key"))
    assert caught.value.reason == "invalid"


async def test_missing_signature_is_missing(signing: tuple[SourceSpec, str]) -> None:
    """No X-Mandrill-Signature header: reason 'missing'."""
    request = signed(signing, form([]))
    headers = {k: v for k, v in request.headers.items() if k != "x-mandrill-signature"}
    with pytest.raises(AuthError) as caught:
        await verify(replace(request, headers=headers), signing[0])
    assert caught.value.reason == "missing"


async def test_non_utf8_body_fails_verification_not_with_a_crash(
    signing: tuple[SourceSpec, str],
) -> None:
    """A body that cannot be the signed form is invalid."""
    request = signed(signing, form([]))
    with pytest.raises(AuthError) as caught:
        await verify(replace(request, body=b"mandrill_events=%FF%FE"), signing[0])
    assert caught.value.reason == "invalid"


async def test_transport_auth_is_checked_too(signing: tuple[SourceSpec, str]) -> None:
    """A source with a bearer token requires it in addition to the signature."""
    source = replace(signing[0], bearer_token="t0ken")
    request = signed(signing, form([]))
    with pytest.raises(AuthError) as caught:
        await verify(request, source)
    assert caught.value.reason == "missing"
    await verify(
        replace(request, headers={**request.headers, "authorization": "Bearer t0ken"}), source
    )


# --- content type and payload errors --------------------------------------------------------


def test_only_form_posts_are_accepted() -> None:
    """Mandrill posts application/x-www-form-urlencoded, never JSON."""
    ADAPTER.check_content_type(
        WebhookRequest(
            "POST", URL, {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}, b""
        )
    )
    with pytest.raises(ContentTypeError):
        ADAPTER.check_content_type(
            WebhookRequest("POST", URL, {"content-type": "application/json"}, b"[]")
        )


def _event(**changes: Any) -> dict[str, Any]:
    event = dict(events_file("message_events.json")[0])
    event.update(changes)
    return event


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"", "mandrill_events"),
        (b"other=1", "mandrill_events"),
        (form([])[:-3], "mandrill_events"),
        (urlencode({"mandrill_events": "[{"}).encode(), "mandrill_events"),
        (form({}), "mandrill_events"),
        (form(12), "mandrill_events"),
        (b"mandrill_events=%FF", "body"),
        (b"\xff\xfe", "body"),
    ],
)
def test_bad_bodies_raise_payload_error_naming_the_field(
    signing: tuple[SourceSpec, str], body: bytes, field: str
) -> None:
    """Missing field, truncated or non-UTF-8 forms and wrongly shaped events are
    PayloadErrors that name the field."""
    with pytest.raises(PayloadError) as caught:
        parse(WebhookRequest("POST", URL, {}, body), signing[0])
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("bad", "suffix"),
    [
        (3, ""),
        ("x", ""),
        ({"ts": 1}, ".event"),
        (_event(msg=None), ".msg"),
        (_event(msg=[]), ".msg"),
        (_event(msg={"_id": "x"}), ".msg.email"),
        (_event(msg={"email": 7}), ".msg.email"),
        # unified strictness policy: an event time that is present must parse (it used to
        # fall back silently to the receipt time, misdating the event)
        (_event(ts="yesterday"), ".ts"),
        (_event(ts=[1700000000]), ".ts"),
        (_event(event=5), ".event"),
    ],
)
def test_a_malformed_item_is_rejected_alone_and_the_rest_parsed(
    signing: tuple[SourceSpec, str], bad: Any, suffix: str
) -> None:
    """In mandrill_events, an entry of the wrong type or with a bad field becomes one
    RejectedItem naming the field; the other entries are normalized as on their own, and
    parse_item replays one entry with the same normalization."""

    def request_for(items: list[bytes]) -> WebhookRequest:
        text = "[" + ",".join(item.decode() for item in items) + "]"
        return WebhookRequest("POST", URL, {}, urlencode({"mandrill_events": text}).encode())

    check_bad_item_is_rejected_alone(
        ADAPTER,
        signing[0],
        request_for,
        good=json.dumps(_event()).encode(),
        bad=json.dumps(bad).encode(),
        suffix=suffix,
        received_at=NOW,
        prefix="mandrill_events",
    )


def test_mistyped_optional_fields_are_ignored_not_fatal(signing: tuple[SourceSpec, str]) -> None:
    """Metadata sent as [] (PHP-style empty), tags as a string, a numeric message id: the
    event is kept with what can be read (the number as text). A bad timestamp is no longer
    among them: the unified policy refuses an event time that is present and does not
    parse (see test_a_malformed_item_is_rejected_alone_and_the_rest_parsed)."""
    event = _event()
    event["msg"] = {**event["msg"], "metadata": [], "tags": "solo", "_id": 12}
    (parsed,) = parse(signed(signing, form([event])), signing[0]).events
    assert parsed.metadata == {}
    assert parsed.tags == ("solo",)
    assert parsed.occurred_at == datetime.fromtimestamp(event["ts"], tz=UTC)
    # optional ids sent as numbers are read as text (handlers._common.opt_str), as in
    # every other adapter; a Mandrill message id used to fall back to the event's _id here
    assert parsed.message_id == "12"
