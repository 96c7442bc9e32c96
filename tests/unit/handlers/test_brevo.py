"""Brevo adapter: single and batched bodies, normalization, X-Mailin-custom, auth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers import brevo
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

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "brevo"
NOW = datetime(2023, 11, 14, 22, 20, tzinfo=UTC)
RECEIVED = NOW + timedelta(seconds=1)
ADAPTER = brevo.ADAPTER


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def unsigned(body: bytes, content_type: str = "application/json") -> WebhookRequest:
    return WebhookRequest(
        "POST", "http://hookline/webhooks/brevo/test", {"content-type": content_type}, body
    )


def parse(body: bytes) -> list[EmailEvent]:
    source, _ = samples_for("brevo").make_source()
    return ADAPTER.parse(unsigned(body), source, RECEIVED).events


@pytest.mark.parametrize(
    ("name", "event_type", "bounce_class", "machine_open"),
    [
        ("request", EventType.QUEUED, None, False),
        ("delivered", EventType.DELIVERED, None, False),
        ("deferred", EventType.DEFERRED, None, False),
        ("soft_bounce", EventType.BOUNCED, BounceClass.SOFT, False),
        ("hard_bounce", EventType.BOUNCED, BounceClass.HARD, False),
        ("blocked", EventType.DROPPED, None, False),
        ("invalid_email", EventType.DROPPED, None, False),
        ("error", EventType.DROPPED, None, False),
        ("spam", EventType.COMPLAINED, None, False),
        ("unsubscribed", EventType.UNSUBSCRIBED, None, False),
        ("opened", EventType.OPENED, None, False),
        ("unique_opened", EventType.OPENED, None, False),
        ("proxy_open", EventType.OPENED, None, True),
        ("unique_proxy_open", EventType.OPENED, None, True),
        ("click", EventType.CLICKED, None, False),
    ],
)
def test_every_documented_event_maps_to_its_normalized_type(
    name: str, event_type: EventType, bounce_class: BounceClass | None, machine_open: bool
) -> None:
    """Each Brevo transactional event gets its normalized type; proxy opens are machine
    opens; raw is the event verbatim."""
    (event,) = parse(fixture(name))
    raw = json.loads(fixture(name))
    assert event.esp_event == name
    assert event.event_type is event_type
    assert event.bounce_class == bounce_class
    assert event.machine_open is machine_open
    assert event.raw == raw


@pytest.mark.parametrize(
    ("alias", "event_type"),
    [
        ("complaint", EventType.COMPLAINED),
        ("sent", EventType.QUEUED),
        ("invalid", EventType.DROPPED),
    ],
)
def test_documented_aliases(alias: str, event_type: EventType) -> None:
    """complaint, sent and invalid, the names some Brevo docs use, are mapped too."""
    (event,) = parse(json.dumps({"event": alias, "email": "a@example.com"}).encode())
    assert event.event_type is event_type
    assert event.recipient == "a@example.com"


def test_delivered_fields_ids_and_metadata() -> None:
    """message-id loses its brackets, ts_epoch (ms) is the time, tags come from the tags
    array, X-Mailin-custom pairs are parsed and the verbatim header kept."""
    (event,) = parse(fixture("delivered"))
    assert event.provider == "brevo"
    assert event.recipient == "example@domain.com"
    assert event.message_id == "202311142213.12345678901@smtp-relay.mailin.fr"
    assert event.occurred_at == datetime(2023, 11, 14, 22, 13, 20, 2000, tzinfo=UTC)
    assert event.tags == ("transac_messages",)
    assert event.metadata == {
        "x-mailin-custom": "order_id:A-1|tenant:acme",
        "order_id": "A-1",
        "tenant": "acme",
    }
    assert event.provider_event_id is None
    assert event.dedup_key == content_dedup_key("brevo", json.loads(fixture("delivered")))


def test_json_x_mailin_custom_is_merged() -> None:
    """A JSON-object X-Mailin-custom is merged into the metadata."""
    (event,) = parse(fixture("delivered_json_custom"))
    assert event.metadata["order_id"] == "A-2"
    assert event.metadata["priority"] == 1
    assert event.metadata["x-mailin-custom"] == '{"order_id": "A-2", "priority": 1}'


def test_plain_x_mailin_custom_is_kept_verbatim() -> None:
    """A free-form X-Mailin-custom without pairs is only kept verbatim."""
    body = {"event": "delivered", "email": "a@example.com", "X-Mailin-custom": "plain"}
    (event,) = parse(json.dumps(body).encode())
    assert event.metadata == {"x-mailin-custom": "plain"}


def test_bounce_keeps_reason_and_status() -> None:
    """A bounce's reason is kept and its SMTP status extracted."""
    (event,) = parse(fixture("hard_bounce"))
    assert event.reason is not None and event.reason.startswith("550 5.1.1")
    assert event.smtp_status == "5.1.1"


def test_click_fields_and_single_tag() -> None:
    """Clicks carry link, user agent and IP; a single `tag` is the tag list."""
    (click,) = parse(fixture("click"))
    assert click.url == "https://example.com/offer"
    assert click.ip == "203.0.113.7"
    assert click.user_agent is not None and click.user_agent.startswith("Mozilla/5.0")
    (spam,) = parse(fixture("spam"))
    assert spam.tags == ("welcome",)


def test_batched_array_yields_one_event_each() -> None:
    """Brevo's batched mode posts an array: one event per item, distinct keys."""
    events = parse(fixture("batched"))
    assert [e.event_type for e in events] == [
        EventType.QUEUED,
        EventType.DELIVERED,
        EventType.CLICKED,
    ]
    assert len({e.dedup_key for e in events}) == 3


def test_time_fallbacks() -> None:
    """ts_epoch in seconds (old docs) is accepted; without it ts_event is used, else the
    receive time."""
    seconds = {"event": "delivered", "email": "a@example.com", "ts_epoch": 1604933654}
    (event,) = parse(json.dumps(seconds).encode())
    assert event.occurred_at == datetime.fromtimestamp(1604933654, tz=UTC)
    (event,) = parse(b'{"event": "delivered", "email": "a@example.com", "ts_event": 1604933654}')
    assert event.occurred_at == datetime.fromtimestamp(1604933654, tz=UTC)
    (event,) = parse(b'{"event": "newthing"}')
    assert event.occurred_at == RECEIVED
    assert event.event_type is EventType.UNKNOWN


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"event": "delivered"', "body"),
        (b'{"event": "d\xe9livered"}', "body"),
        (b"3.5", "body"),
        (b"null", "body"),
        (b"{}", "event"),
        (b'{"event": "delivered", "ts_epoch": "soon"}', "ts_epoch"),
        (b'{"event": "delivered"}', "email"),
        (b'{"event": "hard_bounce", "email": ["a@example.com"]}', "email"),
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
        (b"{}", ".event"),
        (b'"delivered"', ""),
        (b'{"event": "delivered", "ts_event": "soon"}', ".ts_event"),
        (b'{"event": "delivered", "ts_event": 1700000000}', ".email"),
    ],
)
def test_a_malformed_item_is_rejected_alone_and_the_rest_parsed(bad: bytes, suffix: str) -> None:
    """In a batched (array) body, an item of the wrong type or with a bad field becomes
    one RejectedItem naming the field; the other items are normalized as on their own, and
    parse_item replays one item with the same normalization."""
    source, _ = samples_for("brevo").make_source()
    check_bad_item_is_rejected_alone(
        ADAPTER,
        source,
        lambda items: unsigned(b"[" + b",".join(items) + b"]"),
        good=b'{"event": "delivered", "email": "a@example.com", "ts_event": 1700000000}',
        bad=bad,
        suffix=suffix,
        received_at=RECEIVED,
    )


@pytest.mark.parametrize(
    "extra",
    [{"X-Mailin-custom": 5}, {"tags": [[]]}, {"message-id": ["x"]}, {"link": {}}],
)
def test_optional_fields_of_the_wrong_type_read_as_absent(extra: dict[str, Any]) -> None:
    """Unified strictness policy (handlers._common): an optional field of the wrong type is
    treated as absent and the event is stored, where it used to refuse the request."""
    item = {"event": "click", "email": "a@example.com", "ts_event": 1700000000, **extra}
    (event,) = parse(json.dumps(item).encode())
    assert (event.metadata, event.tags, event.message_id, event.url) == ({}, (), None, None)
    assert event.raw == item


def test_wrong_content_type_is_refused() -> None:
    """Brevo posts JSON; anything else is refused."""
    with pytest.raises(ContentTypeError):
        ADAPTER.check_content_type(unsigned(b"{}", "application/xml"))


async def test_transport_auth() -> None:
    """Configured basic auth passes; other credentials are invalid; none are missing; a
    bearer-token source accepts its token; a source without credentials fails closed."""
    source, material = samples_for("brevo").make_source()
    await ADAPTER.verify(
        samples_for("brevo").signed_request(source, material, fixture("delivered"), now=NOW),
        source,
        VerifyContext(now=NOW),
    )
    other, _ = samples_for("brevo").make_source()
    for candidate, reason in (
        (samples_for("brevo").signed_request(other, None, b"{}", now=NOW), "invalid"),
        (unsigned(b"{}"), "missing"),
    ):
        with pytest.raises(AuthError) as info:
            await ADAPTER.verify(candidate, source, VerifyContext(now=NOW))
        assert info.value.reason == reason
    bearer, _ = samples_for("brevo").make_source(basic_auth=None, bearer_token="tok")
    await ADAPTER.verify(
        samples_for("brevo").signed_request(bearer, None, b"{}", now=NOW),
        bearer,
        VerifyContext(now=NOW),
    )
    bare, _ = samples_for("brevo").make_source(basic_auth=None)
    with pytest.raises(AuthError) as info:
        await ADAPTER.verify(unsigned(b"{}"), bare, VerifyContext(now=NOW))
    assert info.value.reason == "missing"


@pytest.mark.parametrize(
    ("event", "count", "event_type"),
    [
        ("delivered", 1, EventType.DELIVERED),
        ("hard_bounce", 3, EventType.BOUNCED),
        ("proxy_open", 2, EventType.OPENED),
    ],
)
async def test_example_body_round_trips(event: str, count: int, event_type: EventType) -> None:
    """example_body is a single object for one event and a batch otherwise, distinct per
    seed, and carries parsable X-Mailin-custom metadata."""
    source, material = samples_for("brevo").make_source("load")
    keys: set[str] = set()
    for seed in (0, 1):
        body = samples_for("brevo").example_body(count, seed=seed, event=event)
        assert body.startswith(b"{" if count == 1 else b"[")
        request = samples_for("brevo").signed_request(source, material, body, now=NOW)
        await ADAPTER.verify(request, source, VerifyContext(now=NOW))
        events = ADAPTER.parse(request, source, RECEIVED).events
        assert [e.event_type for e in events] == [event_type] * count
        assert events[0].metadata["tenant"] == "acme"
        keys.update(e.dedup_key for e in events)
    assert len(keys) == 2 * count


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({"ts_epoch", "ts_event", "s_epoch"}, datetime.fromtimestamp(1700000000.002, tz=UTC)),
        ({"ts_event", "s_epoch"}, datetime.fromtimestamp(1700000000, tz=UTC)),
        ({"s_epoch"}, datetime.fromtimestamp(1699999990.5, tz=UTC)),
        (set(), RECEIVED),
    ],
)
def test_event_time_then_the_sending_time_then_receipt(
    present: set[str], expected: datetime
) -> None:
    """ts_epoch (ms), then ts_event (s), then the envelope's s_epoch (when Brevo sent the
    message, ms), then the receipt time; date and ts (account time zone) never."""
    raw = json.loads(fixture("delivered"))
    raw["s_epoch"] = 1699999990500
    for field in ("ts_epoch", "ts_event", "s_epoch"):
        if field not in present:
            raw.pop(field)
    (event,) = parse(json.dumps(raw).encode())
    assert event.occurred_at == expected


@pytest.mark.parametrize(
    ("spelling", "event_type", "bounce_class"),
    [
        ("unsubscribe", EventType.UNSUBSCRIBED, None),
        ("unsubscribed", EventType.UNSUBSCRIBED, None),
        ("hardBounce", EventType.BOUNCED, BounceClass.HARD),
        ("softBounce", EventType.BOUNCED, BounceClass.SOFT),
        ("uniqueOpened", EventType.OPENED, None),
        ("invalidEmail", EventType.DROPPED, None),
        ("invalid_email", EventType.DROPPED, None),
        ("somethingNew", EventType.UNKNOWN, None),
    ],
)
def test_brevo_spellings_of_one_event_map_alike(
    spelling: str, event_type: EventType, bounce_class: BounceClass | None
) -> None:
    """Judgment call: Brevo's spellings (marketing 'unsubscribe', camelCase names from its
    webhook API) map like the documented snake_case names; invalid_email is dropped (Brevo
    never sent it: no bounce, nothing suppressed); the ESP's spelling is kept."""
    raw = json.loads(fixture("delivered"))
    raw["event"] = spelling
    (event,) = parse(json.dumps(raw).encode())
    assert (event.event_type, event.bounce_class) == (event_type, bounce_class)
    assert event.esp_event == spelling


def test_inbound_parsing_payload_is_a_control_message() -> None:
    """Brevo's inbound parsing webhook ({"items": [received email]}) at the tracking URL is
    an inbound_message control message, not a 400 (it has no 'event')."""
    source, _ = samples_for("brevo").make_source()
    request = WebhookRequest(
        "POST",
        "http://hookline/webhooks/brevo/test",
        {"content-type": "application/json"},
        fixture("inbound_parsing"),
    )
    result = brevo.ADAPTER.parse(request, source, RECEIVED)
    assert result.events == []
    assert result.control is not None and result.control.kind == "inbound_message"
    assert result.control.detail == {"count": 1}
