"""Every event records where its ``occurred_at`` came from (issue #17, item 5): the event's
own time (``event``), else the envelope's (``envelope``: the time of the request that
carried it), else the receipt time (``received``). One test per fallback step per ESP, on
the ESPs' documented samples (``tests/fixtures``) with the time fields taken away one by
one; ESPs whose requests carry no time of their own have no ``envelope`` step."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handlers.base import SourceSpec, WebhookRequest
from handlers.events import TimeSource
from handlers.registry import PROVIDERS, get_adapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RECEIVED = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
#: the envelope time the header-carrying ESPs (SendGrid, Resend) are sent with here
HEADER_EPOCH = 1767000000


def load(provider: str, name: str) -> Any:
    return json.loads((FIXTURES / provider / name).read_bytes())


def request(body: Any, content_type: str = "application/json", **headers: str) -> WebhookRequest:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest("POST", "http://gw/", {"content-type": content_type, **headers}, data)


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


#: (request, the time expected) for a body with its times removed down to ``step``
Case = tuple[WebhookRequest, datetime]


def sendgrid(step: TimeSource) -> Case:
    item = load("sendgrid", "all_events.json")[0]
    headers = {"x-twilio-email-event-webhook-timestamp": str(HEADER_EPOCH)}
    if step is TimeSource.EVENT:
        return request([item], **headers), at(item["timestamp"])
    item.pop("timestamp")
    if step is TimeSource.ENVELOPE:
        return request([item], **headers), at(HEADER_EPOCH)
    return request([item]), RECEIVED


def mailgun(step: TimeSource) -> Case:
    body = load("mailgun", "delivered.json")
    if step is TimeSource.EVENT:
        return request(body), at(body["event-data"]["timestamp"])
    body["event-data"].pop("timestamp")
    if step is TimeSource.ENVELOPE:
        return request(body), at(int(body["signature"]["timestamp"]))
    body["signature"].pop("timestamp")
    return request(body), RECEIVED


def postmark(step: TimeSource) -> Case:
    record = load("postmark", "delivery.json")
    if step is TimeSource.EVENT:
        return request(record), iso(record["DeliveredAt"][:26] + "Z")
    record.pop("DeliveredAt")
    return request(record), RECEIVED


def ses(step: TimeSource) -> Case:
    envelope = load("ses", "event_delivery.json")
    message = json.loads(envelope["Message"])
    if step is TimeSource.EVENT:
        return request(envelope, "text/plain"), iso(message["delivery"]["timestamp"])
    message["delivery"].pop("timestamp")
    envelope["Message"] = json.dumps(message)
    if step is TimeSource.ENVELOPE:
        return request(envelope, "text/plain"), iso(envelope["Timestamp"])
    envelope.pop("Timestamp")
    return request(envelope, "text/plain"), RECEIVED


def sparkpost(step: TimeSource) -> Case:
    item = load("sparkpost", "all_events.json")[0]
    (event,) = item["msys"].values()
    if step is TimeSource.EVENT:
        return request([item]), at(int(event["timestamp"]))
    event.pop("timestamp")
    return request([item]), RECEIVED


def mailjet(step: TimeSource) -> Case:
    item = load("mailjet", "grouped_events.json")[0]
    if step is TimeSource.EVENT:
        return request([item]), at(item["time"])
    item.pop("time")
    return request([item]), RECEIVED


def mandrill(step: TimeSource) -> Case:
    item = load("mandrill", "message_events.json")[0]
    if step is TimeSource.RECEIVED:
        item.pop("ts")
    form = urllib.parse.urlencode({"mandrill_events": json.dumps([item])}).encode()
    expected = at(item["ts"]) if step is TimeSource.EVENT else RECEIVED
    return request(form, "application/x-www-form-urlencoded"), expected


def brevo(step: TimeSource) -> Case:
    item = load("brevo", "delivered.json")
    if step is TimeSource.EVENT:
        return request(item), at(item["ts_epoch"] / 1000)
    item.pop("ts_epoch")
    item.pop("ts_event")
    if step is TimeSource.ENVELOPE:
        item["s_epoch"] = HEADER_EPOCH * 1000
        return request(item), at(HEADER_EPOCH)
    return request(item), RECEIVED


def resend(step: TimeSource) -> Case:
    body = load("resend", "email_clicked.json")
    headers = {"svix-id": "msg_1", "svix-timestamp": str(HEADER_EPOCH)}
    if step is TimeSource.EVENT:
        return request(body, **headers), iso(body["data"]["click"]["timestamp"])
    body["data"]["click"].pop("timestamp")
    body.pop("created_at")
    if step is TimeSource.ENVELOPE:
        return request(body, **headers), at(HEADER_EPOCH)
    return request(body, **{"svix-id": "msg_1"}), RECEIVED


def postal(step: TimeSource) -> Case:
    body = load("postal", "message_sent.json")
    if step is TimeSource.EVENT:
        return request(body), at(body["payload"]["timestamp"])
    body["payload"].pop("timestamp")
    if step is TimeSource.ENVELOPE:
        return request(body), at(body["timestamp"])
    body.pop("timestamp")
    return request(body), RECEIVED


CASES: dict[str, Callable[[TimeSource], Case]] = {
    "sendgrid": sendgrid,
    "mailgun": mailgun,
    "postmark": postmark,
    "ses": ses,
    "sparkpost": sparkpost,
    "mailjet": mailjet,
    "mandrill": mandrill,
    "brevo": brevo,
    "resend": resend,
    "postal": postal,
}
#: ESPs whose requests carry a time of their own (header, envelope or send time)
WITH_ENVELOPE = ("sendgrid", "mailgun", "ses", "brevo", "resend", "postal")
STEPS = [
    (provider, step)
    for provider in PROVIDERS
    for step in TimeSource
    if step is not TimeSource.ENVELOPE or provider in WITH_ENVELOPE
]


def test_every_provider_has_its_cases() -> None:
    """A provider added to the registry fails here until its fallback steps are tested."""
    assert set(CASES) == set(PROVIDERS)


@pytest.mark.parametrize(("provider", "step"), STEPS, ids=[f"{p}-{s}" for p, s in STEPS])
def test_occurred_at_and_its_source_per_fallback_step(provider: str, step: TimeSource) -> None:
    """With the event's own time, occurred_at is that time (source ``event``); without it,
    the envelope's where the ESP sends one (``envelope``); without both, the receipt time
    (``received``)."""
    webhook, expected = CASES[provider](step)
    source = _source(provider)
    result = get_adapter(provider).parse(webhook, source, RECEIVED)
    assert result.rejected == []
    assert result.events
    for event in result.events:
        assert (event.occurred_at, event.time_source) == (expected, step)


def test_brevo_ts_event_and_resend_created_at_are_event_times_too() -> None:
    """The second event-time field of an ESP (Brevo ``ts_event`` without ``ts_epoch``,
    Resend ``created_at`` without the click's own time) is still the event's time."""
    item = load("brevo", "delivered.json")
    item.pop("ts_epoch")
    (event,) = get_adapter("brevo").parse(request(item), _source("brevo"), RECEIVED).events
    assert (event.occurred_at, event.time_source) == (at(item["ts_event"]), TimeSource.EVENT)

    body = load("resend", "email_clicked.json")
    body["data"]["click"].pop("timestamp")
    parsed = get_adapter("resend").parse(request(body), _source("resend"), RECEIVED)
    (event,) = parsed.events
    assert (event.occurred_at, event.time_source) == (iso(body["created_at"]), TimeSource.EVENT)


def test_an_unreadable_envelope_time_is_skipped_for_the_receipt_time() -> None:
    """The envelope's time is the transport's: when it does not parse, the receipt time is
    used (source ``received``), never an error."""
    envelope = load("ses", "event_delivery.json")
    message = json.loads(envelope["Message"])
    message["delivery"].pop("timestamp")
    envelope.update(Message=json.dumps(message), Timestamp="not a time")
    parsed = get_adapter("ses").parse(request(envelope, "text/plain"), _source("ses"), RECEIVED)
    assert {(e.occurred_at, e.time_source) for e in parsed.events} == {
        (RECEIVED, TimeSource.RECEIVED)
    }


def _source(provider: str) -> SourceSpec:
    """Parsing needs no credentials: verification is not under test here."""
    return SourceSpec(provider=provider, name="main")
