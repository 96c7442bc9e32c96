"""Postal: RSA signature verification and webhook normalization."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from handlers import postal
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

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "postal"
NOW = datetime(2025, 3, 4, 10, 0, 6, tzinfo=UTC)
ADAPTER = postal.ADAPTER


@pytest.fixture(scope="module")
def signing() -> tuple[SourceSpec, rsa.RSAPrivateKey]:
    source, key = samples_for("postal").make_source()
    return source, key


def body_of(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def signed(signing: tuple[SourceSpec, rsa.RSAPrivateKey], body: bytes) -> WebhookRequest:
    return samples_for("postal").signed_request(signing[0], signing[1], body, now=NOW)


async def verify(request: WebhookRequest, source: SourceSpec) -> None:
    await ADAPTER.verify(request, source, VerifyContext(now=NOW))


def parse(request: WebhookRequest, source: SourceSpec) -> ParseResult:
    return ADAPTER.parse(request, source, NOW)


async def event_of(signing: tuple[SourceSpec, rsa.RSAPrivateKey], name: str) -> Any:
    request = signed(signing, body_of(name))
    await verify(request, signing[0])
    (event,) = parse(request, signing[0]).events
    return event


# --- normalization --------------------------------------------------------------------------

MAPPING = [
    ("message_sent.json", EventType.DELIVERED, None),
    ("message_delayed.json", EventType.DEFERRED, None),
    ("message_delivery_failed.json", EventType.BOUNCED, BounceClass.HARD),
    ("message_held.json", EventType.DEFERRED, None),
    ("message_bounced.json", EventType.BOUNCED, BounceClass.UNDETERMINED),
    ("message_link_clicked.json", EventType.CLICKED, None),
    ("message_loaded.json", EventType.OPENED, None),
    ("domain_dns_error.json", EventType.UNKNOWN, None),
    ("send_limit_approaching.json", EventType.UNKNOWN, None),
    ("send_limit_exceeded.json", EventType.UNKNOWN, None),
]


@pytest.mark.parametrize(("name", "event_type", "bounce_class"), MAPPING)
async def test_every_documented_event_maps_to_its_normalized_type(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey],
    name: str,
    event_type: EventType,
    bounce_class: BounceClass | None,
) -> None:
    """Each Postal event verifies and normalizes (MessageSent is a delivery, MessageLoaded
    an open); the envelope uuid is the event id and dedup key."""
    raw = json.loads(body_of(name))
    event = await event_of(signing, name)
    assert (event.event_type, event.bounce_class) == (event_type, bounce_class)
    assert event.esp_event == raw["event"]
    assert event.provider_event_id == raw["uuid"]
    assert event.dedup_key == id_dedup_key("postal", raw["uuid"])
    assert event.raw == raw
    assert event.source == signing[0].name


def test_fixtures_cover_every_documented_event() -> None:
    """There is a fixture for each webhook event Postal documents."""
    covered = {json.loads(body_of(name))["event"] for name, *_ in MAPPING}
    assert covered == set(samples_for("postal").events)


async def test_message_fields(signing: tuple[SourceSpec, rsa.RSAPrivateKey]) -> None:
    """Recipient is the envelope RCPT TO, message id the Message-ID Postal returned at
    send time, the tag is the tag, SMTP output the diagnostic, the attempt time is when."""
    event = await event_of(signing, "message_sent.json")
    assert event.recipient == "test@example.com"
    assert event.message_id == "5817a64332f44_4ec93ff59e79d154565eb@app34.mail"
    assert event.tags == ("welcome",)
    assert event.diagnostic == "250 2.0.0 OK 1477944899 ly2si31746747wjb.95 - gsmtp"
    assert event.smtp_status == "2.0.0"
    assert event.reason is not None and event.reason.startswith("Message sent by SMTP")
    assert event.occurred_at == datetime.fromtimestamp(1741082404.75, tz=UTC)
    assert event.metadata == {}


async def test_delivery_failure_keeps_the_smtp_verdict(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey],
) -> None:
    """A hard failure carries Postal's details and the remote server's reply."""
    event = await event_of(signing, "message_delivery_failed.json")
    assert event.smtp_status == "5.1.1"
    assert event.diagnostic is not None and "User unknown" in event.diagnostic


async def test_bounce_reports_the_original_message(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey],
) -> None:
    """MessageBounced is about original_message (not the incoming bounce); without a
    classification the bounce class is undetermined; envelope time is when."""
    event = await event_of(signing, "message_bounced.json")
    assert event.recipient == "test@example.com"
    assert event.message_id == "5817a64332f44_4ec93ff59e79d154565eb@app34.mail"
    assert event.occurred_at == datetime.fromtimestamp(1741082405.5, tz=UTC)


@pytest.mark.parametrize(
    ("bounce_type", "expected"), [("hard", BounceClass.HARD), ("soft", BounceClass.SOFT)]
)
def test_bounce_type_is_used_when_postal_classifies_it(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey], bounce_type: str, expected: BounceClass
) -> None:
    """Builds that add bounce.bounce_type get hard/soft bounces."""
    raw = json.loads(body_of("message_bounced.json"))
    raw["payload"]["bounce"]["bounce_type"] = bounce_type
    request = WebhookRequest("POST", "u", {}, json.dumps(raw).encode())
    (event,) = parse(request, signing[0]).events
    assert event.bounce_class is expected


async def test_click_and_open_details(signing: tuple[SourceSpec, rsa.RSAPrivateKey]) -> None:
    """Clicks keep url, address and agent; loads (opens) address and agent."""
    click = await event_of(signing, "message_link_clicked.json")
    assert (click.url, click.ip) == ("https://atech.media", "185.22.208.2")
    assert click.user_agent is not None and click.user_agent.startswith("Mozilla/5.0")
    opened = await event_of(signing, "message_loaded.json")
    assert (opened.url, opened.ip) == (None, "185.22.208.2")


async def test_server_events_have_no_recipient(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey],
) -> None:
    """DNS errors and send limits are about the server, not an email."""
    for name in ("domain_dns_error.json", "send_limit_exceeded.json"):
        event = await event_of(signing, name)
        assert (event.recipient, event.message_id, event.tags) == (None, None, ())


def test_missing_uuid_falls_back_to_a_content_hash(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey],
) -> None:
    """Without the envelope uuid the dedup key hashes the whole body."""
    raw = json.loads(body_of("message_sent.json"))
    del raw["uuid"]
    (event,) = parse(WebhookRequest("POST", "u", {}, json.dumps(raw).encode()), signing[0]).events
    assert event.dedup_key == content_dedup_key("postal", raw)
    assert event.provider_event_id is None


@pytest.mark.parametrize("event", samples_for("postal").events)
async def test_example_bodies_round_trip_for_every_event(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey], event: str
) -> None:
    """The load-test generator produces verifiable bodies for every event; Postal sends
    one event per request, so asking for several is an error."""
    request = signed(signing, samples_for("postal").example_body(seed=2, event=event))
    await verify(request, signing[0])
    assert [e.esp_event for e in parse(request, signing[0]).events] == [event]
    with pytest.raises(ValueError, match="one event per request"):
        samples_for("postal").example_body(2)


# --- signature ------------------------------------------------------------------------------


def _key_forms(key: rsa.RSAPrivateKey) -> dict[str, str]:
    public = key.public_key()
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pkcs1 = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return {
        "pem-spki": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "pem-pkcs1": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
        ).decode(),
        "base64-spki": base64.b64encode(spki).decode(),
        "base64-pkcs1": base64.b64encode(pkcs1).decode(),
        "base64-spki-wrapped": base64.encodebytes(spki).decode(),
    }


@pytest.mark.parametrize(
    "form", ["pem-spki", "pem-pkcs1", "base64-spki", "base64-pkcs1", "base64-spki-wrapped"]
)
async def test_public_key_is_accepted_in_every_form_postal_shows(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey], form: str
) -> None:
    """PEM or bare base64 DER, SubjectPublicKeyInfo or PKCS#1, all verify."""
    source, key = signing
    request = signed(signing, body_of("message_sent.json"))
    await verify(request, replace(source, signing_key=_key_forms(key)[form]))


async def test_sha1_header_is_accepted_only_without_the_sha256_header(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey],
) -> None:
    """Older Postal sends only X-Postal-Signature (RSA-SHA1): accepted. When the 256
    header is present it alone decides: a bad 256 with a good SHA1 is invalid."""
    request = signed(signing, body_of("message_sent.json"))
    legacy = {k: v for k, v in request.headers.items() if k != "x-postal-signature-256"}
    await verify(replace(request, headers=legacy), signing[0])
    downgraded = {**request.headers, "x-postal-signature-256": base64.b64encode(b"x").decode()}
    with pytest.raises(AuthError) as caught:
        await verify(replace(request, headers=downgraded), signing[0])
    assert caught.value.reason == "invalid"


async def test_signature_is_rsa_sha256_over_the_raw_body(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey],
) -> None:
    """A PKCS#1 v1.5 SHA-256 signature computed here over the exact bytes verifies."""
    source, key = signing
    body = body_of("message_loaded.json")
    signature = base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
    await verify(WebhookRequest("POST", "u", {"x-postal-signature-256": signature}, body), source)


async def test_tampered_body_wrong_key_or_garbage_signature_is_invalid(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey],
) -> None:
    """Any change to the body, another server's key or a non-base64 header fails."""
    source, _ = signing
    request = signed(signing, body_of("message_sent.json"))
    with pytest.raises(AuthError) as caught:
        await verify(replace(request, body=request.body + b" "), source)
    assert caught.value.reason == "invalid"
    other, _ = samples_for("postal").make_source()
    with pytest.raises(AuthError) as caught:
        await verify(request, replace(source, signing_key=other.signing_key))
    assert caught.value.reason == "invalid"
    garbage = {**request.headers, "x-postal-signature-256": "%%%"}
    with pytest.raises(AuthError) as caught:
        await verify(replace(request, headers=garbage), source)
    assert caught.value.reason == "invalid"


async def test_missing_signature_is_missing(signing: tuple[SourceSpec, rsa.RSAPrivateKey]) -> None:
    """Neither signature header: reason 'missing'."""
    request = signed(signing, body_of("message_sent.json"))
    with pytest.raises(AuthError) as caught:
        await verify(replace(request, headers={"content-type": "application/json"}), signing[0])
    assert caught.value.reason == "missing"


async def test_unusable_configured_key_is_an_auth_failure(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey],
) -> None:
    """A signing_key that is not an RSA public key cannot authenticate anything."""
    request = signed(signing, body_of("message_sent.json"))
    for bad in ("not a key", base64.b64encode(b"\x30\x03\x02\x01\x01").decode()):
        with pytest.raises(AuthError) as caught:
            await verify(request, replace(signing[0], signing_key=bad))
        assert caught.value.reason == "invalid"


# --- content type and payload errors --------------------------------------------------------


def test_content_type_is_json() -> None:
    """Postal posts application/json."""
    ADAPTER.check_content_type(
        WebhookRequest("POST", "u", {"content-type": "application/json"}, b"")
    )
    with pytest.raises(ContentTypeError):
        ADAPTER.check_content_type(WebhookRequest("POST", "u", {}, b""))


def _sent(**payload: Any) -> bytes:
    raw = json.loads(body_of("message_sent.json"))
    raw["payload"].update(payload)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (body_of("message_sent.json")[:-5], "body"),
        (b"\xc3\x28", "body"),
        (b"[]", "body"),
        (b"null", "body"),
        (b"{}", "event"),
        (b'{"event": ["MessageSent"], "payload": {}}', "event"),
        (b'{"event": "MessageSent"}', "payload"),
        (b'{"event": "MessageSent", "payload": 1}', "payload"),
        (_sent(message=None), "payload.message"),
        (_sent(message="x"), "payload.message"),
        (_sent(message={"id": 1}), "payload.message.to"),
        (b'{"event": "MessageBounced", "payload": {"message": {}}}', "payload.original_message"),
    ],
)
def test_bad_bodies_raise_payload_error_naming_the_field(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey], body: bytes, field: str
) -> None:
    """Truncated, non-UTF-8 and wrongly shaped bodies are PayloadErrors naming the field."""
    with pytest.raises(PayloadError) as caught:
        parse(WebhookRequest("POST", "u", {}, body), signing[0])
    assert caught.value.field == field


@pytest.mark.parametrize("esp_event", ["MessageDeliveryFailed", "MessageHeld", "MessageSent"])
async def test_events_about_incoming_messages_are_control_messages(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey], esp_event: str
) -> None:
    """An event whose message has direction incoming (Postal could not forward a received
    email to its HTTP endpoint) is an inbound_event control message: no bounce, no event
    for the organisation's own inbound address, and the log detail holds no address."""
    body = json.loads(body_of("message_delivery_failed_incoming.json"))
    body["event"] = esp_event
    request = signed(signing, json.dumps(body).encode())
    await verify(request, signing[0])
    result = parse(request, signing[0])
    assert result.events == []
    assert result.control is not None
    assert result.control.kind == "inbound_event"
    assert result.control.detail == {"esp_event": esp_event}


async def test_outgoing_delivery_failure_is_still_a_hard_bounce(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey],
) -> None:
    """The same failure for an outgoing message stays a hard bounce of its recipient."""
    event = await event_of(signing, "message_delivery_failed.json")
    assert (event.event_type, event.bounce_class) == (EventType.BOUNCED, BounceClass.HARD)
    assert event.recipient == "test@example.com"


async def test_signature_header_is_strict_base64_but_may_be_wrapped(
    signing: tuple[SourceSpec, rsa.RSAPrivateKey],
) -> None:
    """Whitespace inside the signature header (a wrapped base64 line) is ignored, but a
    character outside the base64 alphabet makes the signature invalid rather than being
    silently dropped."""
    request = signed(signing, body_of("message_sent.json"))
    value = request.headers["x-postal-signature-256"]
    wrapped = {**request.headers, "x-postal-signature-256": value[:40] + "\n " + value[40:]}
    await verify(replace(request, headers=wrapped), signing[0])
    stray = {**request.headers, "x-postal-signature-256": value[:40] + "*" + value[40:]}
    with pytest.raises(AuthError) as caught:
        await verify(replace(request, headers=stray), signing[0])
    assert caught.value.reason == "invalid"
