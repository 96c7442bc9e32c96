"""Resend: Svix signature verification and event normalization."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from handlers import resend
from handlers.base import (
    AuthError,
    ContentTypeError,
    ParseResult,
    PayloadError,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import BounceClass, EventType, content_dedup_key, id_dedup_key
from hookline_testing import samples_for

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "resend"
NOW = datetime(2025, 3, 4, 10, 0, 6, tzinfo=UTC)
ADAPTER = resend.ADAPTER


@pytest.fixture(scope="module")
def signing() -> tuple[SourceSpec, str]:
    source, secret = samples_for("resend").make_source()
    return source, secret


def body_of(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def signed(signing: tuple[SourceSpec, str], body: bytes, now: datetime = NOW) -> WebhookRequest:
    return samples_for("resend").signed_request(signing[0], signing[1], body, now=now)


async def verify(request: WebhookRequest, source: SourceSpec, now: datetime = NOW) -> None:
    await ADAPTER.verify(request, source, VerifyContext(now=now))


def parse(request: WebhookRequest, source: SourceSpec) -> ParseResult:
    return ADAPTER.parse(request, source, NOW)


async def events_of(signing: tuple[SourceSpec, str], name: str) -> ParseResult:
    request = signed(signing, body_of(name))
    await verify(request, signing[0])
    return parse(request, signing[0])


# --- normalization --------------------------------------------------------------------------

MAPPING = [
    ("email_scheduled.json", EventType.QUEUED, None),
    ("email_sent.json", EventType.SENT, None),
    ("email_delivered.json", EventType.DELIVERED, None),
    ("email_delivery_delayed.json", EventType.DEFERRED, None),
    ("email_bounced.json", EventType.BOUNCED, BounceClass.HARD),
    ("email_bounced_transient.json", EventType.BOUNCED, BounceClass.SOFT),
    ("email_bounced_undetermined.json", EventType.BOUNCED, BounceClass.UNDETERMINED),
    ("email_complained.json", EventType.COMPLAINED, None),
    ("email_opened.json", EventType.OPENED, None),
    ("email_clicked.json", EventType.CLICKED, None),
    ("email_failed.json", EventType.DROPPED, None),
    ("email_suppressed.json", EventType.DROPPED, None),
    ("contact_created.json", EventType.UNKNOWN, None),
    ("contact_updated_unsubscribed.json", EventType.UNSUBSCRIBED, None),
    ("contact_updated_resubscribed.json", EventType.RESUBSCRIBED, None),
    ("contact_deleted.json", EventType.UNKNOWN, None),
    ("domain_created.json", EventType.UNKNOWN, None),
    ("domain_updated.json", EventType.UNKNOWN, None),
    ("domain_deleted.json", EventType.UNKNOWN, None),
]


@pytest.mark.parametrize(("name", "event_type", "bounce_class"), MAPPING)
async def test_every_documented_event_maps_to_its_normalized_type(
    signing: tuple[SourceSpec, str],
    name: str,
    event_type: EventType,
    bounce_class: BounceClass | None,
) -> None:
    """Every Resend email/contact/domain event verifies and normalizes; the Resend type
    and the whole event are kept."""
    raw = json.loads(body_of(name))
    result = await events_of(signing, name)
    assert result.events
    for event in result.events:
        assert (event.event_type, event.bounce_class) == (event_type, bounce_class)
        assert event.esp_event == raw["type"]
        assert event.provider == "resend"
        assert event.source == signing[0].name
        assert event.raw == raw
        assert event.occurred_at.tzinfo is not None


def test_fixtures_cover_every_documented_event_type() -> None:
    """There is a fixture for each event type Resend documents."""
    covered = {json.loads(body_of(name))["type"] for name, *_ in MAPPING}
    covered.add(json.loads(body_of("email_received.json"))["type"])
    assert set(samples_for("resend").events) <= covered


async def test_one_event_per_recipient_with_svix_id_based_ids(
    signing: tuple[SourceSpec, str],
) -> None:
    """data.to with two recipients gives two events; the Svix message id plus the
    recipient is the event id (and dedup key)."""
    request = signed(signing, body_of("email_delivered.json"))
    events = parse(request, signing[0]).events
    msg_id = request.headers["svix-id"]
    assert [e.recipient for e in events] == ["delivered@example.com", "second@example.org"]
    assert [e.provider_event_id for e in events] == [
        f"{msg_id}:delivered@example.com",
        f"{msg_id}:second@example.org",
    ]
    assert [e.dedup_key for e in events] == [
        id_dedup_key("resend", f"{msg_id}:delivered@example.com"),
        id_dedup_key("resend", f"{msg_id}:second@example.org"),
    ]


async def test_single_recipient_uses_the_svix_id_alone(signing: tuple[SourceSpec, str]) -> None:
    """With one recipient the Svix id is the event id; without it, a content hash."""
    request = signed(signing, body_of("email_sent.json"))
    (event,) = parse(request, signing[0]).events
    assert event.provider_event_id == request.headers["svix-id"]
    assert event.dedup_key == id_dedup_key("resend", request.headers["svix-id"])
    bare = WebhookRequest("POST", request.url, {}, request.body)
    (unsigned,) = parse(bare, signing[0]).events
    assert unsigned.provider_event_id is None
    assert unsigned.dedup_key == content_dedup_key(
        "resend", json.loads(request.body), "delivered@example.com"
    )


async def test_message_id_metadata_campaign_and_time(signing: tuple[SourceSpec, str]) -> None:
    """data.email_id is the message id (what the send API returned), tags are metadata,
    the broadcast is the campaign, the event's created_at is when it happened."""
    (event,) = (await events_of(signing, "email_sent.json")).events
    assert event.message_id == "56761188-7520-42d8-8898-ff6fc54ce618"
    assert event.metadata == {"category": "confirm_email", "customer_id": "c-1001"}
    assert event.campaign == "8b146471-e88e-4322-86af-016cd36fd216"
    assert event.occurred_at == datetime(2025, 3, 4, 10, 0, 5, 126000, tzinfo=UTC)


async def test_tags_as_a_list_of_name_value_pairs(signing: tuple[SourceSpec, str]) -> None:
    """Tags may come as [{name, value}]; a 'campaign' tag names the campaign when there is
    no broadcast."""
    (event,) = (await events_of(signing, "email_delivered_tag_list.json")).events
    assert event.metadata == {"category": "confirm_email", "campaign": "spring"}
    assert event.campaign == "spring"


async def test_bounce_failure_and_suppression_keep_resend_reasons(
    signing: tuple[SourceSpec, str],
) -> None:
    """Bounce type/subType and message, failure reason and suppression type are kept."""
    (bounce,) = (await events_of(signing, "email_bounced.json")).events
    assert bounce.reason == "Permanent/General"
    assert bounce.diagnostic is not None and "550 5.1.1" in bounce.diagnostic
    assert bounce.smtp_status == "5.1.1"
    (soft,) = (await events_of(signing, "email_bounced_transient.json")).events
    assert (soft.reason, soft.smtp_status) == ("Transient/MailboxFull", "5.2.2")
    (failed,) = (await events_of(signing, "email_failed.json")).events
    assert failed.reason == "reached_daily_quota"
    (suppressed,) = (await events_of(signing, "email_suppressed.json")).events
    assert suppressed.reason == "OnAccountSuppressionList"
    assert suppressed.diagnostic is not None and "suppression list" in suppressed.diagnostic


async def test_click_and_open_details(signing: tuple[SourceSpec, str]) -> None:
    """Clicks keep link, address, agent and click time; opens their address and agent."""
    (click,) = (await events_of(signing, "email_clicked.json")).events
    assert click.url == "https://example.com/welcome"
    assert click.ip == "122.115.53.11"
    assert click.user_agent is not None
    assert click.occurred_at == datetime(2025, 3, 4, 12, 1, tzinfo=UTC)
    (opened,) = (await events_of(signing, "email_opened.json")).events
    assert (opened.ip, opened.url) == ("122.115.53.11", None)


async def test_contact_and_domain_events(signing: tuple[SourceSpec, str]) -> None:
    """contact.updated addresses the contact; domain events have no recipient."""
    (unsub,) = (await events_of(signing, "contact_updated_unsubscribed.json")).events
    assert (unsub.recipient, unsub.message_id) == ("reader@example.com", None)
    (domain,) = (await events_of(signing, "domain_created.json")).events
    assert (domain.recipient, domain.message_id) == (None, None)


@pytest.mark.parametrize("event", samples_for("resend").events)
async def test_example_bodies_round_trip_for_every_event(
    signing: tuple[SourceSpec, str], event: str
) -> None:
    """The load-test generator produces verifiable bodies for every event type."""
    now = datetime.now(UTC)
    request = signed(signing, samples_for("resend").example_body(seed=4, event=event), now=now)
    await verify(request, signing[0], now=now)
    result = parse(request, signing[0])
    if event in resend.INBOUND_EVENTS:
        assert result.events == [] and result.control is not None
    else:
        assert [e.esp_event for e in result.events] == [event]


# --- signature ------------------------------------------------------------------------------


async def test_signature_matches_the_standard_webhooks_reference(
    signing: tuple[SourceSpec, str],
) -> None:
    """A request signed by the reference Standard Webhooks library (what Svix implements)
    verifies, and ours carries the same signature."""
    source, secret = signing
    body = body_of("email_sent.json")
    msg_id = "msg_2LJR9ZQpUC0dsdX6sBx1ZtW4bF2"
    reference = Webhook(secret).sign(msg_id, NOW, body.decode())
    request = WebhookRequest(
        "POST",
        "http://gw/",
        {
            "content-type": "application/json",
            "svix-id": msg_id,
            "svix-timestamp": str(int(NOW.timestamp())),
            "svix-signature": reference,
        },
        body,
    )
    await verify(request, source)
    ours = resend.svix_signature(secret, msg_id, str(int(NOW.timestamp())), body)
    assert reference == f"v1,{ours}"


async def test_any_matching_signature_in_the_list_passes(
    signing: tuple[SourceSpec, str],
) -> None:
    """During secret rotation Svix sends several signatures; one match is enough, other
    versions are ignored."""
    request = signed(signing, body_of("email_sent.json"))
    valid = request.headers["svix-signature"]
    rotated = f"v1a,bm90LWEtc2ln v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {valid}"
    await verify(
        replace(request, headers={**request.headers, "svix-signature": rotated}), signing[0]
    )


async def test_tampered_body_or_other_secret_is_invalid(signing: tuple[SourceSpec, str]) -> None:
    """A changed body, a foreign secret or only non-v1 signatures fail."""
    source, _ = signing
    request = signed(signing, body_of("email_bounced.json"))
    tampered = replace(request, body=request.body.replace(b"Permanent", b"Transient"))
    with pytest.raises(AuthError) as caught:
        await verify(tampered, source)
    assert caught.value.reason == "invalid"
    other, _ = samples_for("resend").make_source()
    with pytest.raises(AuthError) as caught:
        await verify(request, replace(source, signing_key=other.signing_key))
    assert caught.value.reason == "invalid"
    value = request.headers["svix-signature"].replace("v1,", "v2,")
    with pytest.raises(AuthError) as caught:
        await verify(replace(request, headers={**request.headers, "svix-signature": value}), source)
    assert caught.value.reason == "invalid"


@pytest.mark.parametrize("header", ["svix-id", "svix-timestamp", "svix-signature"])
async def test_missing_svix_headers_are_missing(
    signing: tuple[SourceSpec, str], header: str
) -> None:
    """Each of the three Svix headers is required."""
    request = signed(signing, body_of("email_sent.json"))
    headers = {k: v for k, v in request.headers.items() if k != header}
    with pytest.raises(AuthError) as caught:
        await verify(replace(request, headers=headers), signing[0])
    assert caught.value.reason == "missing"


async def test_standard_webhooks_header_names_are_accepted(
    signing: tuple[SourceSpec, str],
) -> None:
    """webhook-id / webhook-timestamp / webhook-signature work like the svix-* headers."""
    request = signed(signing, body_of("email_sent.json"))
    headers = {k.replace("svix-", "webhook-"): v for k, v in request.headers.items()}
    await verify(replace(request, headers=headers), signing[0])


@pytest.mark.parametrize("skew", [301, -301])
async def test_timestamps_beyond_five_minutes_are_stale(
    signing: tuple[SourceSpec, str], skew: int
) -> None:
    """Svix's tolerance is five minutes either way; 299 s still passes."""
    request = signed(signing, body_of("email_sent.json"))
    await verify(request, signing[0], now=NOW + timedelta(seconds=299 if skew > 0 else -299))
    with pytest.raises(AuthError) as caught:
        await verify(request, signing[0], now=NOW + timedelta(seconds=skew))
    assert caught.value.reason == "stale"


async def test_a_smaller_source_window_narrows_the_tolerance(
    signing: tuple[SourceSpec, str],
) -> None:
    """replay_window_seconds may only narrow the five minutes."""
    request = signed(signing, body_of("email_sent.json"))
    with pytest.raises(AuthError) as caught:
        await verify(
            request, replace(signing[0], replay_window_seconds=60), now=NOW + timedelta(seconds=61)
        )
    assert caught.value.reason == "stale"


async def test_malformed_timestamp_or_secret_is_invalid(signing: tuple[SourceSpec, str]) -> None:
    """A non-numeric timestamp, or a configured secret that is not base64, is invalid."""
    request = signed(signing, body_of("email_sent.json"))
    with pytest.raises(AuthError) as caught:
        await verify(
            replace(request, headers={**request.headers, "svix-timestamp": "soon"}), signing[0]
        )
    assert caught.value.reason == "invalid"
    with pytest.raises(AuthError) as caught:
        await verify(request, replace(signing[0], signing_key="whsec_!!not base64!!"))
    assert caught.value.reason == "invalid"


# --- content type and payload errors --------------------------------------------------------


def test_content_type_is_json() -> None:
    """Resend posts application/json; anything else is refused."""
    ADAPTER.check_content_type(
        WebhookRequest("POST", "u", {"content-type": "application/json"}, b"")
    )
    with pytest.raises(ContentTypeError):
        ADAPTER.check_content_type(WebhookRequest("POST", "u", {"content-type": "text/plain"}, b""))


def _email(**data: Any) -> bytes:
    body = json.loads(body_of("email_sent.json"))
    body["data"].update(data)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (body_of("email_sent.json")[:-10], "body"),
        (b"\xff" + body_of("email_sent.json"), "body"),
        (b"[]", "body"),
        (b"3.5", "body"),
        (b"{}", "type"),
        (b'{"type": 5, "data": {}}', "type"),
        (b'{"type": "email.sent"}', "data"),
        (b'{"type": "email.sent", "data": []}', "data"),
        (_email(email_id=None), "data.email_id"),
        (_email(to=None), "data.to"),
        (_email(to=[]), "data.to"),
        (_email(to={"a": 1}), "data.to"),
        (_email(to=["ok@example.com", 7]), "data.to[1]"),
    ],
)
def test_bad_bodies_raise_payload_error_naming_the_field(
    signing: tuple[SourceSpec, str], body: bytes, field: str
) -> None:
    """Truncated, non-UTF-8 and wrongly shaped bodies are PayloadErrors naming the field."""
    with pytest.raises(PayloadError) as caught:
        parse(WebhookRequest("POST", "u", {}, body), signing[0])
    assert caught.value.field == field


def test_a_single_address_string_in_to_is_accepted(signing: tuple[SourceSpec, str]) -> None:
    """data.to given as one string is one recipient."""
    (event,) = parse(
        WebhookRequest("POST", "u", {}, _email(to="solo@example.com")), signing[0]
    ).events
    assert event.recipient == "solo@example.com"


async def test_received_email_is_an_inbound_control_message(
    signing: tuple[SourceSpec, str],
) -> None:
    """email.received (Resend inbound: a received email) verifies and is an inbound_message
    control message, no event for the organisation's own receiving address."""
    result = await events_of(signing, "email_received.json")
    assert result.events == []
    assert result.control is not None and result.control.kind == "inbound_message"
    assert result.control.detail == {"esp_event": "email.received"}


async def test_older_bounce_and_suppression_payloads(signing: tuple[SourceSpec, str]) -> None:
    """Judgment calls for Resend's older payloads: a bounce without a type is an
    undetermined bounce (counts towards a quarantine, never suppresses at once: it may
    have been transient); a suppression without details is still dropped (Resend did not
    send: no bounce, nothing for the suppression list)."""
    (bounce,) = (await events_of(signing, "email_bounced_older.json")).events
    assert (bounce.event_type, bounce.bounce_class) == (
        EventType.BOUNCED,
        BounceClass.UNDETERMINED,
    )
    assert bounce.diagnostic == "The recipient's email provider sent a bounce message."
    assert bounce.metadata == {"category": "confirm_email"}
    (suppressed,) = (await events_of(signing, "email_suppressed_older.json")).events
    assert (suppressed.event_type, suppressed.bounce_class) == (EventType.DROPPED, None)


@pytest.mark.parametrize("created_at", [True, False])
async def test_an_undated_event_takes_created_at_then_the_svix_timestamp(
    signing: tuple[SourceSpec, str], created_at: bool
) -> None:
    """Time order: the event's own, then the event's created_at, then the svix-timestamp
    of the delivery (when Resend signed it), then the receipt time."""
    raw = json.loads(body_of("email_delivered.json"))
    if not created_at:
        raw.pop("created_at")
    sent = datetime(2025, 3, 4, 10, 0, 2, tzinfo=UTC)
    request = signed(signing, json.dumps(raw).encode(), now=sent)
    events = parse(request, signing[0]).events
    expected = datetime(2025, 3, 4, 10, 0, 5, 126000, tzinfo=UTC) if created_at else sent
    assert events and {event.occurred_at for event in events} == {expected}


async def test_a_secret_with_stray_characters_is_not_a_whsec_secret(
    signing: tuple[SourceSpec, str],
) -> None:
    """The base64 after ``whsec_`` is decoded strictly: a character outside the alphabet
    (which a lenient decoder would silently drop) makes the configured secret invalid at
    start-up and at verification, rather than a different key."""
    lenient_only = "whsec_dGVz*dA=="  # "test" once the "*" is dropped
    with pytest.raises(ValueError):
        ADAPTER.check_source(replace(signing[0], signing_key=lenient_only))
    request = signed(signing, body_of("email_sent.json"))
    with pytest.raises(AuthError) as caught:
        await verify(request, replace(signing[0], signing_key=lenient_only))
    assert caught.value.reason == "invalid"
