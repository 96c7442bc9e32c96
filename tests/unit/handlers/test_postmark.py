"""Postmark adapter: transport authentication and RecordType / bounce Type normalization."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers import postmark
from handlers.base import (
    AuthError,
    ContentTypeError,
    PayloadError,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import BounceClass, EmailEvent, EventType, content_dedup_key
from hookline_testing import samples_for

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "postmark"
NOW = datetime(2023, 11, 14, 22, 20, tzinfo=UTC)
RECEIVED = NOW + timedelta(seconds=1)
ADAPTER = postmark.ADAPTER


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def unsigned(body: bytes, content_type: str = "application/json") -> WebhookRequest:
    return WebhookRequest(
        "POST", "http://hookline/webhooks/postmark/test", {"content-type": content_type}, body
    )


def parse_one(body: bytes) -> EmailEvent:
    source, _ = samples_for("postmark").make_source()
    (event,) = ADAPTER.parse(unsigned(body), source, RECEIVED).events
    return event


# --- normalization ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "event_type", "bounce_class"),
    [
        ("delivery", EventType.DELIVERED, None),
        ("bounce_hard", EventType.BOUNCED, BounceClass.HARD),
        ("bounce_soft", EventType.BOUNCED, BounceClass.SOFT),
        ("bounce_transient", EventType.DEFERRED, None),
        ("bounce_dns_error", EventType.DEFERRED, None),
        ("bounce_blocked", EventType.BOUNCED, BounceClass.SOFT),
        ("bounce_spam_notification", EventType.BOUNCED, BounceClass.SOFT),
        ("bounce_auto_responder", EventType.AUTO_REPLIED, None),
        ("spam_complaint", EventType.COMPLAINED, None),
        ("open", EventType.OPENED, None),
        ("click", EventType.CLICKED, None),
        ("subscription_change_unsubscribe", EventType.UNSUBSCRIBED, None),
        ("subscription_change_resubscribe", EventType.RESUBSCRIBED, None),
    ],
)
def test_every_record_type_maps_to_its_normalized_type(
    name: str, event_type: EventType, bounce_class: BounceClass | None
) -> None:
    """Each documented RecordType (and Bounce Type) gets its normalized type and class."""
    event = parse_one(fixture(name))
    raw = json.loads(fixture(name))
    assert event.event_type is event_type
    assert event.bounce_class == bounce_class
    assert event.esp_event == raw["RecordType"]
    assert event.raw == raw


@pytest.mark.parametrize(
    ("bounce_type", "event_type", "bounce_class"),
    [
        ("HardBounce", EventType.BOUNCED, BounceClass.HARD),
        ("BadEmailAddress", EventType.BOUNCED, BounceClass.HARD),
        ("ManuallyDeactivated", EventType.BOUNCED, BounceClass.HARD),
        ("SoftBounce", EventType.BOUNCED, BounceClass.SOFT),
        ("Blocked", EventType.BOUNCED, BounceClass.SOFT),
        ("VirusNotification", EventType.BOUNCED, BounceClass.SOFT),
        ("DMARCPolicy", EventType.BOUNCED, BounceClass.SOFT),
        ("Unknown", EventType.BOUNCED, BounceClass.UNDETERMINED),
        ("Transient", EventType.DEFERRED, None),
        ("DnsError", EventType.DEFERRED, None),
        ("SpamNotification", EventType.BOUNCED, BounceClass.SOFT),
        ("SpamComplaint", EventType.COMPLAINED, None),
        ("Unsubscribe", EventType.UNSUBSCRIBED, None),
        ("Subscribe", EventType.RESUBSCRIBED, None),
        ("Unconfirmed", EventType.DROPPED, None),
        ("SMTPApiError", EventType.DROPPED, None),
        ("TemplateRenderingFailed", EventType.DROPPED, None),
        ("AutoResponder", EventType.AUTO_REPLIED, None),
        ("AddressChange", EventType.UNKNOWN, None),
        ("ChallengeVerification", EventType.AUTO_REPLIED, None),
        ("OpenRelayTest", EventType.UNKNOWN, None),
        ("InboundError", EventType.UNKNOWN, None),
        ("SomethingNew", EventType.BOUNCED, BounceClass.UNDETERMINED),
    ],
)
def test_every_documented_bounce_type(
    bounce_type: str, event_type: EventType, bounce_class: BounceClass | None
) -> None:
    """Every bounce Type Postmark documents has a deliberate mapping; the Type is the
    reason; an undocumented Type is still a bounce, undetermined."""
    raw = json.loads(fixture("bounce_hard"))
    raw["Type"] = bounce_type
    event = parse_one(json.dumps(raw).encode())
    assert event.event_type is event_type
    assert event.bounce_class == bounce_class
    assert event.reason == bounce_type


def test_bounce_fields_ids_and_metadata() -> None:
    """A bounce keeps Postmark's ID (dedup key), MessageID, Details, Metadata and Tag."""
    event = parse_one(fixture("bounce_hard"))
    assert event.provider == "postmark"
    assert event.recipient == "john@example.com"
    assert event.message_id == "883953f4-6105-42a2-a16a-77a8eac79483"
    assert event.provider_event_id == "42"
    assert event.dedup_key == "postmark:Bounce:42"
    assert event.smtp_status == "5.1.1"
    assert event.diagnostic is not None and event.diagnostic.startswith("smtp;550 5.1.1")
    assert event.reason == "HardBounce"
    assert event.occurred_at == datetime(2019, 11, 5, 16, 33, 54, 907025, tzinfo=UTC)
    assert event.metadata == {"a_key": "a_value", "b_key": "b_value"}
    assert event.tags == ("Test",)


def test_spam_complaint_id_is_namespaced_by_record_type() -> None:
    """SpamComplaint records are deduplicated on their own ID, apart from bounces."""
    event = parse_one(fixture("spam_complaint"))
    assert event.dedup_key == "postmark:SpamComplaint:49"
    assert event.provider_event_id == "49"


def test_records_without_id_use_a_content_hash() -> None:
    """Delivery, Open, Click and SubscriptionChange carry no ID: content hash dedup."""
    raw = json.loads(fixture("delivery"))
    event = parse_one(fixture("delivery"))
    assert event.provider_event_id is None
    assert event.dedup_key == content_dedup_key("postmark", raw)
    assert event.diagnostic == "Test delivery webhook details"
    assert event.recipient == "john@example.com"


def test_open_and_click_fields() -> None:
    """Opens and clicks carry the user agent and Geo.IP; clicks the original link."""
    opened = parse_one(fixture("open"))
    assert opened.ip == "188.2.95.4"
    assert opened.user_agent is not None and opened.user_agent.startswith("Mozilla/5.0")
    assert opened.url is None
    assert opened.metadata == {"example": "value", "example_2": "value"}
    click = parse_one(fixture("click"))
    assert click.url == "https://example.com"
    assert click.tags == ("welcome-email",)


def test_subscription_change_reason_and_offset_time() -> None:
    """SubscriptionChange keeps the suppression reason; an offset time becomes UTC."""
    unsub = parse_one(fixture("subscription_change_unsubscribe"))
    assert unsub.reason == "ManualSuppression"
    resub = parse_one(fixture("subscription_change_resubscribe"))
    assert resub.occurred_at == datetime(2020, 2, 2, 13, 0, tzinfo=UTC)
    assert resub.reason is None


def test_unknown_record_type_and_missing_time() -> None:
    """An unknown RecordType is stored as unknown, timed at reception."""
    event = parse_one(b'{"RecordType": "SomethingNew", "MessageID": "x"}')
    assert event.event_type is EventType.UNKNOWN
    assert event.occurred_at == RECEIVED
    assert event.message_id == "x"


# --- malformed bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"RecordType": "Delivery"', "body"),
        (b'{"RecordType": "D\xe9livery"}', "body"),
        (b"[]", "body"),
        (b"null", "body"),
        (b"{}", "RecordType"),
        (b'{"RecordType": 5}', "RecordType"),
        (b'{"RecordType": "Delivery", "DeliveredAt": "yesterday"}', "DeliveredAt"),
        (b'{"RecordType": "Bounce", "BouncedAt": 1700000000}', "BouncedAt"),
        (b'{"RecordType": "Bounce", "BouncedAt": "0001-01-01T00:00:00+01:00"}', "BouncedAt"),
        (b'{"RecordType": "SubscriptionChange", "SuppressSending": "perhaps"}', "SuppressSending"),
        (b'{"RecordType": "SubscriptionChange", "Recipient": "a@example.com"}', "SuppressSending"),
        (b'{"RecordType": "Delivery"}', "Recipient"),
        (b'{"RecordType": "Bounce", "Email": ["a@example.com"]}', "Email"),
    ],
)
def test_bad_bodies_raise_payload_error_naming_the_field(body: bytes, field: str) -> None:
    """Truncated, non-UTF-8 and wrongly shaped bodies raise PayloadError naming the field."""
    source, _ = samples_for("postmark").make_source()
    with pytest.raises(PayloadError) as info:
        ADAPTER.parse(unsigned(body), source, RECEIVED)
    assert info.value.field == field


@pytest.mark.parametrize(
    "extra",
    [{"Metadata": "x"}, {"Geo": []}, {"Tag": {"a": 1}}, {"MessageID": {"id": 1}}],
)
def test_optional_fields_of_the_wrong_type_read_as_absent(extra: dict[str, Any]) -> None:
    """Unified strictness policy (handlers._common): an optional field of the wrong type is
    treated as absent and the record is stored, where it used to refuse the request (400,
    retried by Postmark, then dropped)."""
    source, _ = samples_for("postmark").make_source()
    record = {"RecordType": "Click", "Recipient": "a@example.com", **extra}
    (event,) = ADAPTER.parse(unsigned(json.dumps(record).encode()), source, RECEIVED).events
    assert event.event_type is EventType.CLICKED
    assert event.recipient == "a@example.com"
    assert (event.metadata, event.ip, event.tags, event.message_id) == ({}, None, (), None)
    assert event.raw == record


def test_wrong_content_type_is_refused() -> None:
    """Postmark posts JSON; anything else is refused."""
    with pytest.raises(ContentTypeError):
        ADAPTER.check_content_type(unsigned(b"{}", "text/plain"))


# --- transport authentication -------------------------------------------------------------


async def test_basic_auth_from_the_source_verifies() -> None:
    """The request Postmark sends with the configured credentials verifies."""
    source, material = samples_for("postmark").make_source()
    request = samples_for("postmark").signed_request(source, material, fixture("delivery"), now=NOW)
    assert request.headers["authorization"].startswith("Basic ")
    await ADAPTER.verify(request, source, VerifyContext(now=NOW))


async def test_wrong_password_is_invalid() -> None:
    """Credentials that differ from the source's are invalid."""
    source, material = samples_for("postmark").make_source()
    other, _ = samples_for("postmark").make_source()
    request = samples_for("postmark").signed_request(other, material, fixture("delivery"), now=NOW)
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    assert info.value.reason == "invalid"


async def test_missing_credentials_are_missing() -> None:
    """A request without an Authorization header is refused as missing."""
    source, _ = samples_for("postmark").make_source()
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(unsigned(fixture("delivery")), source, VerifyContext(now=NOW))
    assert info.value.reason == "missing"


async def test_source_without_credentials_fails_closed_unless_allowed() -> None:
    """Postmark signs nothing: a source with no credentials refuses every request unless
    it explicitly allows unauthenticated requests."""
    source, _ = samples_for("postmark").make_source(basic_auth=None)
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(unsigned(fixture("delivery")), source, VerifyContext(now=NOW))
    assert info.value.reason == "missing"
    open_source, _ = samples_for("postmark").make_source(
        basic_auth=None, allow_unauthenticated=True
    )
    await ADAPTER.verify(unsigned(fixture("delivery")), open_source, VerifyContext(now=NOW))


async def test_bearer_token_source() -> None:
    """A source with a bearer token accepts that token and refuses another."""
    source, material = samples_for("postmark").make_source(basic_auth=None, bearer_token="t0ken")
    request = samples_for("postmark").signed_request(source, material, fixture("delivery"), now=NOW)
    assert request.headers["authorization"] == "Bearer t0ken"
    await ADAPTER.verify(request, source, VerifyContext(now=NOW))
    wrong = WebhookRequest(
        "POST", request.url, {**request.headers, "authorization": "Bearer nope"}, request.body
    )
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(wrong, source, VerifyContext(now=NOW))
    assert info.value.reason == "invalid"


# --- helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record_type", "event_type"),
    [
        ("Delivery", EventType.DELIVERED),
        ("Bounce", EventType.BOUNCED),
        ("SpamComplaint", EventType.COMPLAINED),
        ("Open", EventType.OPENED),
    ],
)
async def test_example_body_round_trips(record_type: str, event_type: EventType) -> None:
    """example_body builds a record per RecordType, distinct per seed; count > 1 refused."""
    source, material = samples_for("postmark").make_source("load")
    keys: set[Any] = set()
    for seed in (0, 1):
        body = samples_for("postmark").example_body(seed=seed, event=record_type)
        request = samples_for("postmark").signed_request(source, material, body, now=NOW)
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))
        (event,) = ADAPTER.parse(request, source, RECEIVED).events
        assert event.event_type is event_type
        keys.add(event.dedup_key)
    assert len(keys) == 2
    with pytest.raises(ValueError, match="one event"):
        samples_for("postmark").example_body(5)


@pytest.mark.parametrize(
    "body",
    [
        fixture("inbound"),
        b'{"RecordType": "Inbound", "MessageID": "x"}',
        json.dumps({**json.loads(fixture("inbound")), "MessageStream": "support"}).encode(),
    ],
)
def test_inbound_webhook_at_the_tracking_url_is_a_control_message(body: bytes) -> None:
    """Postmark's inbound webhook (a received email) is recognised: no event, an
    inbound_message control message (it used to be refused: RecordType is required)."""
    source, _ = samples_for("postmark").make_source()
    result = ADAPTER.parse(unsigned(body), source, RECEIVED)
    assert result.events == []
    assert result.control is not None and result.control.kind == "inbound_message"


def test_a_body_without_record_type_that_is_no_inbound_email_is_still_refused() -> None:
    """Only the inbound shape is acknowledged; another body without RecordType is a 400."""
    with pytest.raises(PayloadError):
        parse_one(b'{"MessageID": "x"}')


@pytest.mark.parametrize(
    ("suppress", "reason", "event_type"),
    [
        (True, "ManualSuppression", EventType.UNSUBSCRIBED),
        (True, "HardBounce", EventType.UNKNOWN),
        (True, "SpamComplaint", EventType.UNKNOWN),
        (False, None, EventType.RESUBSCRIBED),
        (False, "HardBounce", EventType.RESUBSCRIBED),
    ],
)
def test_subscription_change_reasons(
    suppress: bool, reason: str | None, event_type: EventType
) -> None:
    """Judgment call: a SubscriptionChange with SuppressionReason HardBounce or SpamComplaint
    echoes a Bounce / SpamComplaint record Postmark sends anyway, so it is neither an
    unsubscribe (which inflated unsubscribe counts) nor a second bounce: unknown, with the
    reason kept. A manual suppression is an unsubscribe; reactivation a resubscribe."""
    raw = json.loads(fixture("subscription_change_unsubscribe"))
    raw.update(SuppressSending=suppress, SuppressionReason=reason)
    event = parse_one(json.dumps(raw).encode())
    assert event.event_type is event_type
    assert event.reason == reason


def test_a_spam_notification_is_the_receiving_filter_not_a_complaint() -> None:
    """TypeCode 512 means a receiving server or its filter blocked the message as spam; the
    recipient complained of nothing, so it is a soft bounce (counted towards a quarantine)
    and never ``complained`` (which would suppress a working address at once). Only
    ``SpamComplaint`` (100001) is the recipient's complaint."""
    notification = parse_one(fixture("bounce_spam_notification"))
    assert notification.event_type is EventType.BOUNCED
    assert notification.bounce_class is BounceClass.SOFT
