"""Amazon SES via SNS: SNS signature verification and SES event normalization."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers import ses
from handlers.base import (
    AuthError,
    ContentTypeError,
    ParseResult,
    PayloadError,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import BounceClass, EventType, id_dedup_key
from hookline_testing import (
    SES_EVENT_TYPES,
    TEST_CERT_URL,
    TEST_TOPIC_ARN,
    SnsSigningMaterial,
    make_test_certificate,
    samples_for,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ses"
RECEIVED = datetime(2025, 3, 4, 10, 0, 6, tzinfo=UTC)
#: every fixture envelope is stamped within a few minutes of this
FIXTURE_NOW = datetime(2025, 3, 4, 10, 0, 10, tzinfo=UTC)
ADAPTER = ses.ADAPTER


@pytest.fixture(scope="module")
def signing() -> tuple[SourceSpec, SnsSigningMaterial]:
    source, material = samples_for("ses").make_source()
    return source, material


def fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text())
    assert isinstance(data, dict)
    return data


def encode(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, indent=2).encode()


def signed(
    signing: tuple[SourceSpec, SnsSigningMaterial], envelope: dict[str, Any]
) -> WebhookRequest:
    source, material = signing
    return samples_for("ses").signed_request(source, material, encode(envelope), now=FIXTURE_NOW)


def with_body(request: WebhookRequest, body: bytes) -> WebhookRequest:
    return replace(request, body=body)


async def verify(
    request: WebhookRequest,
    source: SourceSpec,
    now: datetime = FIXTURE_NOW,
    fetch: Any = None,
) -> None:
    await ADAPTER.verify(request, source, VerifyContext(now=now, fetch_certificate=fetch))


def parse(request: WebhookRequest, source: SourceSpec) -> ParseResult:
    return ADAPTER.parse(request, source, RECEIVED)


async def verified_events(signing: tuple[SourceSpec, SnsSigningMaterial], name: str) -> ParseResult:
    request = signed(signing, fixture(name))
    await verify(request, signing[0])
    return parse(request, signing[0])


# --- normalization --------------------------------------------------------------------------

MAPPING = [
    ("event_send.json", "Send", EventType.SENT, None),
    ("event_reject.json", "Reject", EventType.DROPPED, None),
    ("event_bounce_permanent.json", "Bounce", EventType.BOUNCED, BounceClass.HARD),
    ("event_bounce_transient.json", "Bounce", EventType.BOUNCED, BounceClass.SOFT),
    ("event_bounce_undetermined.json", "Bounce", EventType.BOUNCED, BounceClass.UNDETERMINED),
    ("event_complaint.json", "Complaint", EventType.COMPLAINED, None),
    ("event_delivery.json", "Delivery", EventType.DELIVERED, None),
    ("event_open.json", "Open", EventType.OPENED, None),
    ("event_click.json", "Click", EventType.CLICKED, None),
    ("event_rendering_failure.json", "Rendering Failure", EventType.DROPPED, None),
    ("event_delivery_delay.json", "DeliveryDelay", EventType.DEFERRED, None),
    ("event_subscription_unsubscribe.json", "Subscription", EventType.UNSUBSCRIBED, None),
    ("event_subscription_resubscribe.json", "Subscription", EventType.RESUBSCRIBED, None),
    ("notification_bounce.json", "Bounce", EventType.BOUNCED, BounceClass.HARD),
    ("notification_complaint.json", "Complaint", EventType.COMPLAINED, None),
    ("notification_delivery.json", "Delivery", EventType.DELIVERED, None),
]


@pytest.mark.parametrize(("name", "esp_event", "event_type", "bounce_class"), MAPPING)
async def test_every_documented_event_maps_to_its_normalized_type(
    signing: tuple[SourceSpec, SnsSigningMaterial],
    name: str,
    esp_event: str,
    event_type: EventType,
    bounce_class: BounceClass | None,
) -> None:
    """Each SES event publishing type and classic notification verifies and normalizes to
    the project's vocabulary, one event per recipient, with the SES type kept."""
    result = await verified_events(signing, name)
    assert result.control is None
    assert result.events
    for event in result.events:
        assert event.provider == "ses"
        assert event.source == signing[0].name
        assert event.event_type is event_type
        assert event.esp_event == esp_event
        assert event.bounce_class is bounce_class
        assert event.occurred_at.tzinfo is not None
        assert event.received_at == RECEIVED
        assert event.raw == json.loads(fixture(name)["Message"])


def test_fixtures_cover_every_documented_event_type() -> None:
    """The fixtures include every SES event publishing type (plus classic notifications)."""
    covered = {json.loads(fixture(name)["Message"]).get("eventType") for name, *_ in MAPPING}
    assert set(SES_EVENT_TYPES) <= covered


async def test_bounce_keeps_smtp_details_and_ses_classification(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """A permanent bounce carries the recipient's status, diagnostic and SES's own
    bounce type/subtype; occurred_at is the bounce's timestamp."""
    (event,) = (await verified_events(signing, "event_bounce_permanent.json")).events
    assert event.recipient == "recipient@example.com"
    assert event.smtp_status == "5.1.1"
    assert event.diagnostic == "smtp; 550 5.1.1 user unknown"
    assert event.reason == "Permanent/General"
    assert event.occurred_at == datetime(2025, 3, 4, 10, 0, 2, 669000, tzinfo=UTC)


async def test_transient_bounce_yields_one_soft_bounce_per_bounced_recipient(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """Every bouncedRecipients entry becomes its own event with its own status."""
    events = (await verified_events(signing, "event_bounce_transient.json")).events
    assert [(e.recipient, e.smtp_status) for e in events] == [
        ("recipient@example.com", "4.2.2"),
        ("second@example.org", "5.2.2"),
    ]
    assert {e.reason for e in events} == {"Transient/MailboxFull"}


async def test_delivery_to_two_recipients_gives_two_events_with_distinct_dedup_keys(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """The dedup key is the SNS MessageId with the recipient; the message id is SES's."""
    envelope = fixture("event_delivery.json")
    events = (await verified_events(signing, "event_delivery.json")).events
    assert [e.recipient for e in events] == ["recipient@example.com", "second@example.org"]
    assert [e.dedup_key for e in events] == [
        id_dedup_key("ses", f"{envelope['MessageId']}:recipient@example.com"),
        id_dedup_key("ses", f"{envelope['MessageId']}:second@example.org"),
    ]
    assert [e.provider_event_id for e in events] == [
        f"{envelope['MessageId']}:recipient@example.com",
        f"{envelope['MessageId']}:second@example.org",
    ]
    assert {e.message_id for e in events} == {
        "010001234567abcd-89ef0123-4567-89ab-cdef-0123456789ab-000000"
    }
    assert {e.diagnostic for e in events} == {"250 2.6.0 Message received"}
    assert {e.smtp_status for e in events} == {"2.6.0"}


async def test_message_tags_become_metadata_and_campaign(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """mail.tags (ses:* included) is the metadata, single-valued tags as scalars like every
    other ESP's metadata (SES sends arrays); a 'campaign' tag names the campaign."""
    (event,) = (await verified_events(signing, "event_send.json")).events
    assert event.metadata == {
        "ses:configuration-set": "ConfigSet",
        "ses:source-ip": "192.0.2.0",
        "ses:from-domain": "example.com",
        "ses:caller-identity": "ses_user",
        "campaign": "spring-sale",
        "customer_id": "c-1001",
    }
    assert event.campaign == "spring-sale"
    assert event.occurred_at == datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


async def test_classic_notifications_have_no_tags(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """Identity notifications carry no message tags: empty metadata, no campaign."""
    (event,) = (await verified_events(signing, "notification_bounce.json")).events
    assert event.metadata == {}
    assert event.campaign is None
    assert event.message_id == "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000"


async def test_click_and_open_carry_link_address_and_user_agent(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """Click: url, ip, user agent, click time. Open: ip, user agent, open time."""
    (click,) = (await verified_events(signing, "event_click.json")).events
    assert click.url == "https://example.com/spring-sale?utm_source=ses"
    assert click.ip == "192.0.2.1"
    assert click.user_agent is not None and click.user_agent.startswith("Mozilla/5.0 (Windows")
    assert click.occurred_at == datetime(2025, 3, 4, 12, 1, tzinfo=UTC)
    (opened,) = (await verified_events(signing, "event_open.json")).events
    assert opened.ip == "192.0.2.1"
    assert opened.url is None
    assert opened.machine_open is False
    assert opened.occurred_at == datetime(2025, 3, 4, 12, 0, tzinfo=UTC)


async def test_delay_reject_rendering_failure_and_complaint_keep_their_reasons(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """The ESP's reason travels in reason / smtp_status / diagnostic."""
    (delay,) = (await verified_events(signing, "event_delivery_delay.json")).events
    assert (delay.reason, delay.smtp_status) == ("TransientCommunicationFailure", "4.4.1")
    assert delay.diagnostic == "smtp; 421 4.4.1 Unable to connect to remote host"
    (reject,) = (await verified_events(signing, "event_reject.json")).events
    assert reject.reason == "Bad content"
    (failure,) = (await verified_events(signing, "event_rendering_failure.json")).events
    assert failure.reason == "Attribute 'attributeName' is not present in the rendering data."
    assert failure.diagnostic == "MyTemplate"
    (complaint,) = (await verified_events(signing, "event_complaint.json")).events
    assert complaint.reason == "abuse"
    assert complaint.occurred_at == datetime(2025, 3, 4, 11, 15, tzinfo=UTC)


@pytest.mark.parametrize("name", ["notification_topic_validation.json", "notification_setup.json"])
async def test_topic_setup_notices_are_control_messages_not_events(
    signing: tuple[SourceSpec, SnsSigningMaterial], name: str
) -> None:
    """SES's plain-text "Successfully validated SNS topic" Notification and its
    AmazonSnsSubscriptionSucceeded notice verify and are a topic_validation control
    message: no event (the plain text used to be refused as invalid JSON)."""
    envelope = fixture(name)
    result = await verified_events(signing, name)
    assert result.events == []
    assert result.control is not None
    assert result.control.kind == "topic_validation"
    assert result.control.confirm_url is None
    assert result.control.detail == {
        "topic_arn": envelope["TopicArn"],
        "message_id": envelope["MessageId"],
    }


async def test_other_plain_text_notifications_are_still_refused(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """Only SES's own validation text is acknowledged; other non-JSON text is a 400."""
    envelope = fixture("notification_topic_validation.json")
    envelope["Message"] = "Successfully validated? no: something else"
    with pytest.raises(PayloadError):
        parse(signed(signing, envelope), signing[0])


@pytest.mark.parametrize(
    ("new", "old", "expected"),
    [
        ({"unsubscribeAll": True}, {"unsubscribeAll": False}, EventType.UNSUBSCRIBED),
        (
            {"topicSubscriptionStatus": [{"topicName": "t", "subscriptionStatus": "OptOut"}]},
            {"topicSubscriptionStatus": [{"topicName": "t", "subscriptionStatus": "OptIn"}]},
            EventType.UNSUBSCRIBED,
        ),
        ({"unsubscribeAll": False}, {"unsubscribeAll": True}, EventType.RESUBSCRIBED),
        (
            {"topicSubscriptionStatus": [{"topicName": "t", "subscriptionStatus": "OptIn"}]},
            {"topicSubscriptionStatus": [{"topicName": "t", "subscriptionStatus": "OptOut"}]},
            EventType.RESUBSCRIBED,
        ),
        ({}, {}, EventType.UNSUBSCRIBED),
    ],
)
async def test_subscription_direction_follows_the_preference_change(
    signing: tuple[SourceSpec, SnsSigningMaterial],
    new: dict[str, Any],
    old: dict[str, Any],
    expected: EventType,
) -> None:
    """Opting out (all or a topic) is an unsubscribe; opting back in is a resubscribe; an
    unclear change defaults to unsubscribe (SES only sends it from unsubscribe actions)."""
    envelope = fixture("event_subscription_unsubscribe.json")
    message = json.loads(envelope["Message"])
    message["subscription"]["newTopicPreferences"] = new
    message["subscription"]["oldTopicPreferences"] = old
    envelope["Message"] = json.dumps(message)
    request = signed(signing, envelope)
    await verify(request, signing[0])
    (event,) = parse(request, signing[0]).events
    assert event.event_type is expected


async def test_unknown_event_type_is_stored_per_destination(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """An eventType SES adds later is kept as unknown, never refused."""
    envelope = fixture("event_send.json")
    message = json.loads(envelope["Message"])
    message["eventType"] = "SomethingNew"
    envelope["Message"] = json.dumps(message)
    (event,) = parse(signed(signing, envelope), signing[0]).events
    assert (event.event_type, event.esp_event) == (EventType.UNKNOWN, "SomethingNew")
    assert event.recipient == "recipient@example.com"


@pytest.mark.parametrize("kind", SES_EVENT_TYPES)
async def test_example_bodies_round_trip_for_every_event_type(
    signing: tuple[SourceSpec, SnsSigningMaterial], kind: str
) -> None:
    """The load-test generator produces verifiable bodies for every SES event type."""
    source, material = signing
    now = datetime.now(UTC)
    request = samples_for("ses").signed_request(
        source, material, samples_for("ses").example_body(3, event=kind), now=now
    )
    await ADAPTER.verify(request, source, VerifyContext(now=now))
    events = ADAPTER.parse(request, source, now).events
    assert len(events) == 3
    assert {e.esp_event for e in events} == {kind}


# --- control messages -----------------------------------------------------------------------


async def test_subscription_confirmation_becomes_a_control_message(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """A SubscriptionConfirmation verifies (its own canonical fields) and hands the gateway
    the SubscribeURL to visit; it yields no events."""
    envelope = fixture("subscription_confirmation.json")
    result = await verified_events(signing, "subscription_confirmation.json")
    assert result.events == []
    assert result.control is not None
    assert result.control.kind == "subscription_confirmation"
    assert result.control.confirm_url == envelope["SubscribeURL"]
    assert result.control.detail == {
        "topic_arn": TEST_TOPIC_ARN,
        "token": envelope["Token"],
        "message_id": envelope["MessageId"],
    }


async def test_unsubscribe_confirmation_never_offers_a_url_to_visit(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """Visiting an UnsubscribeConfirmation's SubscribeURL would re-subscribe: it is only
    reported in the detail, never as confirm_url."""
    envelope = fixture("unsubscribe_confirmation.json")
    result = await verified_events(signing, "unsubscribe_confirmation.json")
    assert result.control is not None
    assert result.control.kind == "unsubscribe_confirmation"
    assert result.control.confirm_url is None
    assert result.control.detail["subscribe_url"] == envelope["SubscribeURL"]


async def test_confirmation_with_a_foreign_subscribe_url_is_untrusted(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """Even correctly signed, a SubscribeURL outside Amazon SNS is never handed over."""
    envelope = fixture("subscription_confirmation.json")
    envelope["SubscribeURL"] = "https://attacker.example.com/?Action=ConfirmSubscription"
    with pytest.raises(AuthError) as caught:
        await verify(signed(signing, envelope), signing[0])
    assert caught.value.reason == "untrusted"


# --- signature verification -----------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
async def test_signature_versions_1_and_2_verify(
    signing: tuple[SourceSpec, SnsSigningMaterial], version: str
) -> None:
    """SignatureVersion 1 (SHA1withRSA) and 2 (SHA256withRSA) both verify."""
    source, material = signing
    request = samples_for("ses").signed_request(
        source,
        replace(material, signature_version=version),
        encode(fixture("event_delivery.json")),
        now=FIXTURE_NOW,
    )
    assert json.loads(request.body)["SignatureVersion"] == version
    await verify(request, source)


async def test_signature_is_checked_against_an_independent_canonical_string(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """The signed string is Key\\nValue\\n for Message, MessageId, Subject (if present),
    Timestamp, TopicArn, Type: a signature computed here by hand verifies."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    source, material = signing
    envelope = fixture("notification_setup.json")
    canonical = "".join(
        f"{key}\n{envelope[key]}\n"
        for key in ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
    ).encode()
    signature = material.private_key.sign(canonical, padding.PKCS1v15(), hashes.SHA1())
    envelope["Signature"] = base64.b64encode(signature).decode()
    request = WebhookRequest("POST", "http://gw/webhooks/ses/test", {}, encode(envelope))
    await verify(request, source)


async def test_tampered_message_is_invalid(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """Changing the signed Message after signing fails verification."""
    request = signed(signing, fixture("event_bounce_permanent.json"))
    envelope = json.loads(request.body)
    envelope["Message"] = envelope["Message"].replace("Permanent", "Transient")
    with pytest.raises(AuthError) as caught:
        await verify(with_body(request, encode(envelope)), signing[0])
    assert caught.value.reason == "invalid"


async def test_tampered_signature_is_invalid(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """A signature from another key (or garbage) is invalid."""
    request = signed(signing, fixture("event_send.json"))
    envelope = json.loads(request.body)
    envelope["Signature"] = base64.b64encode(b"\x00" * 256).decode()
    with pytest.raises(AuthError) as caught:
        await verify(with_body(request, encode(envelope)), signing[0])
    assert caught.value.reason == "invalid"
    envelope["Signature"] = "not base64!"
    with pytest.raises(AuthError) as caught:
        await verify(with_body(request, encode(envelope)), signing[0])
    assert caught.value.reason == "invalid"


@pytest.mark.parametrize("field", ["Signature", "SignatureVersion", "SigningCertURL"])
async def test_missing_signature_fields_are_missing(
    signing: tuple[SourceSpec, SnsSigningMaterial], field: str
) -> None:
    """Without its signature fields a message is unauthenticated (reason 'missing')."""
    envelope = json.loads(signed(signing, fixture("event_send.json")).body)
    del envelope[field]
    request = WebhookRequest("POST", "http://gw/", {}, encode(envelope))
    with pytest.raises(AuthError) as caught:
        await verify(request, signing[0])
    assert caught.value.reason == "missing"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"eventType": "Delivery", "mail": {}}', b"\xff\xfe"],
)
async def test_bodies_that_are_not_signed_sns_messages_are_missing(
    signing: tuple[SourceSpec, SnsSigningMaterial], body: bytes
) -> None:
    """Garbage, arrays and raw SES events (raw message delivery) carry no signature."""
    with pytest.raises(AuthError) as caught:
        await verify(WebhookRequest("POST", "http://gw/", {}, body), signing[0])
    assert caught.value.reason == "missing"


async def test_unsupported_signature_version_is_invalid(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """Only SignatureVersion 1 and 2 exist."""
    envelope = json.loads(signed(signing, fixture("event_send.json")).body)
    envelope["SignatureVersion"] = "3"
    with pytest.raises(AuthError) as caught:
        await verify(WebhookRequest("POST", "http://gw/", {}, encode(envelope)), signing[0])
    assert caught.value.reason == "invalid"


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-0123abcd.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/SimpleNotificationService-01.pem",
        "https://sns.us-east-1.amazonaws.com/other-0123abcd.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem?x=1",
    ],
)
async def test_certificate_urls_outside_amazon_sns_are_untrusted(
    signing: tuple[SourceSpec, SnsSigningMaterial], url: str
) -> None:
    """SigningCertURL must be an https Amazon SNS certificate URL, whatever else is right."""
    source, material = signing
    request = samples_for("ses").signed_request(
        replace(source, sns_certificates={url: material.certificate_pem}),
        replace(material, cert_url=url),
        encode(fixture("event_send.json")),
        now=FIXTURE_NOW,
    )
    with pytest.raises(AuthError) as caught:
        await verify(request, replace(source, sns_certificates={url: material.certificate_pem}))
    assert caught.value.reason == "untrusted"


async def test_china_region_certificate_urls_are_accepted(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """The .amazonaws.com.cn partition is Amazon SNS too."""
    source, material = signing
    url = "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-9f8e7d.pem"
    pinned = replace(source, sns_certificates={url: material.certificate_pem})
    request = samples_for("ses").signed_request(
        pinned, replace(material, cert_url=url), encode(fixture("event_send.json")), now=FIXTURE_NOW
    )
    await verify(request, pinned)


async def test_topic_not_configured_for_the_source_is_untrusted(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """A correctly signed message from another topic is refused; so is any topic when the
    source lists none (fail closed)."""
    source, _ = signing
    request = signed(signing, fixture("event_send.json"))
    for topics in (("arn:aws:sns:us-east-1:123456789012:other",), ()):
        with pytest.raises(AuthError) as caught:
            await verify(request, replace(source, topic_arns=topics))
        assert caught.value.reason == "untrusted"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-amz-sns-message-type", "SubscriptionConfirmation"),
        ("x-amz-sns-message-id", "00000000-0000-0000-0000-000000000000"),
        ("x-amz-sns-topic-arn", "arn:aws:sns:us-east-1:123456789012:other"),
    ],
)
async def test_sns_headers_must_agree_with_the_body(
    signing: tuple[SourceSpec, SnsSigningMaterial], header: str, value: str
) -> None:
    """The x-amz-sns-* headers, when present, must match the signed body."""
    request = signed(signing, fixture("event_send.json"))
    tampered = replace(request, headers={**request.headers, header: value})
    with pytest.raises(AuthError) as caught:
        await verify(tampered, signing[0])
    assert caught.value.reason == "invalid"


async def test_messages_without_sns_headers_still_verify(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """The headers are checked when present; the signature alone authenticates."""
    request = signed(signing, fixture("event_send.json"))
    await verify(replace(request, headers={"content-type": "text/plain"}), signing[0])


@pytest.mark.parametrize("offset", [timedelta(days=1, seconds=1), -timedelta(days=1, seconds=1)])
async def test_timestamp_outside_the_replay_window_is_stale(
    signing: tuple[SourceSpec, SnsSigningMaterial], offset: timedelta
) -> None:
    """The SNS Timestamp must lie within replay_window_seconds of now, either side."""
    request = signed(signing, fixture("event_send.json"))
    signed_at = datetime(2025, 3, 4, 10, 0, 5, 123000, tzinfo=UTC)
    await verify(request, signing[0], now=signed_at + timedelta(days=1))
    with pytest.raises(AuthError) as caught:
        await verify(request, signing[0], now=signed_at + offset)
    assert caught.value.reason == "stale"
    with pytest.raises(AuthError) as caught:
        await verify(
            request, replace(signing[0], replay_window_seconds=60), now=signed_at + timedelta(61)
        )
    assert caught.value.reason == "stale"


async def test_unpinned_certificate_is_fetched_through_the_gateway(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """Without a pin, the certificate comes from context.fetch_certificate(url)."""
    source, material = signing
    asked: list[str] = []

    async def fetch(url: str) -> bytes:
        asked.append(url)
        return material.certificate_pem.encode()

    unpinned = replace(source, sns_certificates={})
    await verify(signed(signing, fixture("event_send.json")), unpinned, fetch=fetch)
    assert asked == [TEST_CERT_URL]


async def test_no_pin_and_no_fetcher_or_empty_fetch_is_untrusted(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """No way to obtain the certificate means no trust."""
    unpinned = replace(signing[0], sns_certificates={})
    request = signed(signing, fixture("event_send.json"))
    with pytest.raises(AuthError) as caught:
        await verify(request, unpinned)
    assert caught.value.reason == "untrusted"

    async def empty(url: str) -> bytes:
        return b""

    with pytest.raises(AuthError) as caught:
        await verify(request, unpinned, fetch=empty)
    assert caught.value.reason == "untrusted"


async def test_certificate_that_is_not_a_certificate_is_untrusted(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """A pinned or fetched blob that does not parse as an RSA certificate is untrusted.
    (The blob is random each run: a fixed one would be answered from the parse cache a
    previous test filled, and the parsing path would go untested.)"""
    garbage = base64.b64encode(secrets.token_bytes(48)).decode()
    broken = f"-----BEGIN CERTIFICATE-----\n{garbage}\n-----END CERTIFICATE-----\n"
    source = replace(signing[0], sns_certificates={TEST_CERT_URL: broken})
    with pytest.raises(AuthError) as caught:
        await verify(signed(signing, fixture("event_send.json")), source)
    assert caught.value.reason == "untrusted"


async def test_certificate_outside_its_validity_period_is_untrusted(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """An expired signing certificate no longer vouches for messages."""
    key, pem = make_test_certificate(
        not_before=datetime(2020, 1, 1, tzinfo=UTC), not_after=datetime(2024, 1, 1, tzinfo=UTC)
    )
    material = SnsSigningMaterial(private_key=key, certificate_pem=pem)
    source = replace(signing[0], sns_certificates={TEST_CERT_URL: pem})
    request = samples_for("ses").signed_request(
        source, material, encode(fixture("event_send.json")), now=FIXTURE_NOW
    )
    with pytest.raises(AuthError) as caught:
        await verify(request, source)
    assert caught.value.reason == "untrusted"


async def test_message_signed_by_another_key_than_the_pinned_certificate_is_invalid(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """The pin decides: a message signed with any other key does not verify."""
    other_source, other_material = samples_for("ses").make_source()
    request = samples_for("ses").signed_request(
        other_source, other_material, encode(fixture("event_send.json")), now=FIXTURE_NOW
    )
    with pytest.raises(AuthError) as caught:
        await verify(request, signing[0])
    assert caught.value.reason == "invalid"


async def test_pinned_certificate_may_be_a_file_path(
    signing: tuple[SourceSpec, SnsSigningMaterial], tmp_path: Path
) -> None:
    """sns_certificates values are PEM text or a path to a PEM file; an unreadable path
    is untrusted rather than an error."""
    source, material = signing
    pem_file = tmp_path / "sns.pem"
    pem_file.write_text(material.certificate_pem)
    request = signed(signing, fixture("event_send.json"))
    await verify(request, replace(source, sns_certificates={TEST_CERT_URL: str(pem_file)}))
    missing = replace(source, sns_certificates={TEST_CERT_URL: str(tmp_path / "absent.pem")})
    with pytest.raises(AuthError) as caught:
        await verify(request, missing)
    assert caught.value.reason == "untrusted"


async def test_transport_auth_applies_on_top_of_the_signature(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """A source with basic_auth also requires it (SNS supports credentials in the URL)."""
    source = replace(signing[0], basic_auth="sns:secret")
    request = signed(signing, fixture("event_send.json"))
    with pytest.raises(AuthError) as caught:
        await verify(request, source)
    assert caught.value.reason == "missing"
    token = base64.b64encode(b"sns:secret").decode()
    authorized = replace(request, headers={**request.headers, "authorization": f"Basic {token}"})
    await verify(authorized, source)


# --- content type and payload errors --------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain; charset=UTF-8", "application/json"])
def test_sns_content_types_are_accepted(content_type: str) -> None:
    """SNS posts text/plain; application/json is accepted too."""
    ADAPTER.check_content_type(
        WebhookRequest("POST", "http://gw/", {"content-type": content_type}, b"{}")
    )


def test_other_content_types_are_refused() -> None:
    """A form post is not SNS."""
    with pytest.raises(ContentTypeError):
        ADAPTER.check_content_type(
            WebhookRequest(
                "POST", "http://gw/", {"content-type": "application/x-www-form-urlencoded"}, b""
            )
        )


def _with_message(message: Any) -> bytes:
    envelope = fixture("event_send.json")
    envelope["Message"] = message if isinstance(message, str) else json.dumps(message)
    return encode(envelope)


def _send_message() -> dict[str, Any]:
    message = json.loads(fixture("event_send.json")["Message"])
    assert isinstance(message, dict)
    return message


def _bounce_message(**bounce: Any) -> dict[str, Any]:
    message = json.loads(fixture("event_bounce_permanent.json")["Message"])
    message["bounce"].update(bounce)
    assert isinstance(message, dict)
    return message


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (encode(fixture("event_send.json"))[:-40], "body"),
        (b"\xff" + encode(fixture("event_send.json")), "body"),
        (b"[]", "body"),
        (b"42", "body"),
        (b'{"MessageId": "m", "TopicArn": "t"}', "Type"),
        (b'{"Type": "Notification", "TopicArn": "t"}', "MessageId"),
        (b'{"Type": "Notification", "MessageId": "m"}', "TopicArn"),
        (b'{"Type": "Other", "MessageId": "m", "TopicArn": "t"}', "Type"),
        (b'{"Type": "Notification", "MessageId": "m", "TopicArn": "t"}', "Message"),
        (_with_message("not json"), "Message"),
        (_with_message([1, 2]), "Message"),
        (_with_message("7"), "Message"),
        (_with_message({"mail": {}}), "Message.eventType"),
        (_with_message({"eventType": "Send"}), "Message.mail"),
        (
            _with_message({"eventType": "Send", "mail": {"destination": []}}),
            "Message.mail.messageId",
        ),
        (_with_message({**_send_message(), "eventType": "Bounce"}), "Message.bounce"),
        (_with_message({**_send_message(), "eventType": "Open"}), "Message.open"),
        (_with_message({**_send_message(), "eventType": "Subscription"}), "Message.subscription"),
        (_with_message(_bounce_message(bouncedRecipients={})), "Message.bounce.bouncedRecipients"),
        (
            _with_message(_bounce_message(bouncedRecipients=[3])),
            "Message.bounce.bouncedRecipients[0]",
        ),
        (
            _with_message(_bounce_message(bouncedRecipients=[{"status": "5.1.1"}])),
            "Message.bounce.bouncedRecipients[0].emailAddress",
        ),
        (
            _with_message(
                {**_send_message(), "eventType": "Delivery", "delivery": {"recipients": [1]}}
            ),
            "Message.delivery.recipients[0]",
        ),
    ],
)
def test_bad_bodies_raise_payload_error_naming_the_field(
    signing: tuple[SourceSpec, SnsSigningMaterial], body: bytes, field: str
) -> None:
    """Truncated, non-UTF-8 or wrongly shaped bodies are PayloadErrors naming the field."""
    request = WebhookRequest("POST", "http://gw/", {"content-type": "text/plain"}, body)
    with pytest.raises(PayloadError) as caught:
        parse(request, signing[0])
    assert caught.value.field == field


async def test_example_body_dedup_keys_depend_on_seed_only(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """Same seed, same keys (even at another time); another seed, other keys."""
    source, material = signing
    now = datetime.now(UTC)

    def keys(seed: int, at: datetime) -> list[str]:
        request = samples_for("ses").signed_request(
            source, material, samples_for("ses").example_body(2, seed=seed, now=at), now=at
        )
        return [e.dedup_key for e in ADAPTER.parse(request, source, at).events]

    assert keys(1, now) == keys(1, now + timedelta(seconds=30))
    assert set(keys(1, now)).isdisjoint(keys(2, now))


@pytest.mark.parametrize(
    ("delivery_time", "envelope_time", "expected"),
    [
        (
            "2025-03-04T10:00:01.544Z",
            "2025-03-04T10:00:05.123Z",
            datetime(2025, 3, 4, 10, 0, 1, 544000, tzinfo=UTC),
        ),
        (None, "2025-03-04T10:00:05.123Z", datetime(2025, 3, 4, 10, 0, 5, 123000, tzinfo=UTC)),
        (None, None, RECEIVED),
        (None, "not a time", RECEIVED),
    ],
)
async def test_event_time_then_the_sns_envelope_time_then_receipt(
    signing: tuple[SourceSpec, SnsSigningMaterial],
    delivery_time: str | None,
    envelope_time: str | None,
    expected: datetime,
) -> None:
    """occurred_at is the event's own time; without one, the SNS envelope's Timestamp (when
    SNS published it), not the receipt time; the receipt time only when neither is usable."""
    envelope = fixture("event_delivery.json")
    message = json.loads(envelope["Message"])
    message["delivery"].pop("timestamp")
    if delivery_time is not None:
        message["delivery"]["timestamp"] = delivery_time
    envelope["Message"] = json.dumps(message)
    if envelope_time is None:
        envelope.pop("Timestamp")
    else:
        envelope["Timestamp"] = envelope_time
    # parsing only (SNS needs a Timestamp to sign): the body of a signed request, replaced
    request = with_body(signed(signing, fixture("event_delivery.json")), encode(envelope))
    events = parse(request, signing[0]).events
    assert events and {e.occurred_at for e in events} == {expected}


def test_tags_with_several_values_stay_lists() -> None:
    """Only single-valued tags become scalars; several values (or none) stay as sent."""
    assert ses.scalar_tags({"a": ["x"], "b": ["x", "y"], "c": [], "d": "z"}) == {
        "a": "x",
        "b": ["x", "y"],
        "c": [],
        "d": "z",
    }


async def test_a_subscribe_url_with_a_fragment_is_untrusted(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """A SubscribeURL on the real SNS host but carrying a fragment is not the URL SNS
    sends: even correctly signed, it is never handed over for confirmation."""
    envelope = fixture("subscription_confirmation.json")
    envelope["SubscribeURL"] = envelope["SubscribeURL"] + "#x"
    with pytest.raises(AuthError) as caught:
        await verify(signed(signing, envelope), signing[0])
    assert caught.value.reason == "untrusted"


#: the fields SNS signs, in order (AWS's documented canonical form): a Notification's
#: (Subject only when present) and a Subscription/UnsubscribeConfirmation's
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


def hand_signed(material: SnsSigningMaterial, envelope: dict[str, Any]) -> WebhookRequest:
    """``envelope`` signed here, independently of handlers/sns.py's canonical_string."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    fields = NOTIFICATION_FIELDS if envelope["Type"] == "Notification" else CONFIRMATION_FIELDS
    canonical = "".join(f"{key}\n{envelope[key]}\n" for key in fields if key in envelope)
    signature = material.private_key.sign(canonical.encode(), padding.PKCS1v15(), hashes.SHA1())
    signed_envelope = {**envelope, "Signature": base64.b64encode(signature).decode()}
    return WebhookRequest("POST", "http://gw/webhooks/ses/test", {}, encode(signed_envelope))


@pytest.mark.parametrize("name", ["event_send.json", "subscription_confirmation.json"])
async def test_messages_without_a_subject_and_confirmations_sign_their_own_fields(
    signing: tuple[SourceSpec, SnsSigningMaterial], name: str
) -> None:
    """A Notification without a Subject signs Message, MessageId, Timestamp, TopicArn,
    Type (the absent Subject is skipped, not the end of the list); a
    SubscriptionConfirmation signs its own list (SubscribeURL, Token). A signature
    computed here by hand over those fields verifies."""
    source, material = signing
    await verify(hand_signed(material, fixture(name)), source)


async def test_malformed_signature_fields_are_invalid_never_a_crash(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """A Signature that is not a string, or is base64 with a stray character a lenient
    decoder would drop, is refused as ``invalid``."""
    source = signing[0]
    envelope = json.loads(signed(signing, fixture("event_send.json")).body)
    signature = envelope["Signature"]
    for bad in (12345, signature[:8] + "!" + signature[8:]):
        body = encode({**envelope, "Signature": bad})
        with pytest.raises(AuthError) as caught:
            await verify(WebhookRequest("POST", "http://gw/", {}, body), source)
        assert caught.value.reason == "invalid"


@pytest.mark.parametrize(
    ("field", "value"),
    [("Type", "Advert"), ("Timestamp", "yesterday"), ("Timestamp", None), ("Message", 7)],
)
async def test_an_unknown_type_a_bad_timestamp_or_a_non_string_field_is_invalid(
    signing: tuple[SourceSpec, SnsSigningMaterial], field: str, value: Any
) -> None:
    """Fields SNS always sends, wrong: an unknown message Type, a Timestamp that is missing
    or not a time, a signed field that is not a string. Each is ``invalid``."""
    envelope = json.loads(signed(signing, fixture("event_send.json")).body)
    if value is None:
        del envelope[field]
    else:
        envelope[field] = value
    with pytest.raises(AuthError) as caught:
        await verify(WebhookRequest("POST", "http://gw/", {}, encode(envelope)), signing[0])
    assert caught.value.reason == "invalid"


@pytest.mark.parametrize("edge", ["not_before", "not_after"])
async def test_a_certificate_is_valid_on_the_first_and_last_second_of_its_period(
    signing: tuple[SourceSpec, SnsSigningMaterial], edge: str
) -> None:
    """A certificate's validity period includes both its ends: a message verified exactly
    at ``not_before`` or exactly at ``not_after`` is accepted."""
    period = {
        "not_before": FIXTURE_NOW - timedelta(days=1),
        "not_after": FIXTURE_NOW + timedelta(days=1),
    }
    period[edge] = FIXTURE_NOW
    key, pem = make_test_certificate(**period)
    material = SnsSigningMaterial(private_key=key, certificate_pem=pem)
    source = replace(signing[0], sns_certificates={TEST_CERT_URL: pem})
    request = samples_for("ses").signed_request(
        source, material, encode(fixture("event_send.json")), now=FIXTURE_NOW
    )
    await verify(request, source)


async def test_a_certificate_for_a_non_rsa_key_is_untrusted(
    signing: tuple[SourceSpec, SnsSigningMaterial],
) -> None:
    """SNS signs with RSA: a well-formed certificate for an elliptic-curve key is
    ``untrusted`` (never a crash), however the message is signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(FIXTURE_NOW - timedelta(days=1))
        .not_valid_after(FIXTURE_NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    source = replace(signing[0], sns_certificates={TEST_CERT_URL: pem})
    with pytest.raises(AuthError) as caught:
        await verify(signed(signing, fixture("event_send.json")), source)
    assert caught.value.reason == "untrusted"
