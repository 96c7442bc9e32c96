"""The one strictness policy (``handlers._common``), applied the same way to every adapter in
``handlers.registry.PROVIDERS`` (issue #17, item 7).

Each ESP's documented sample is malformed in the same ways, at that ESP's own field for
the thing (its event type, its recipient, its event time, one of its optional strings),
and every adapter must give the same class of outcome: an optional field of the wrong type
is *accepted* (the event is stored without it); a required field missing or of the wrong
type, and an event time that does not parse, are *refused* (a ``PayloadError`` for a
single-event body, the item rejected for quarantine in a batch; never stored).
"""

from __future__ import annotations

import copy
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handlers.base import PayloadError, SourceSpec, WebhookRequest
from handlers.registry import PROVIDERS, get_adapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RECEIVED = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

#: a path into a decoded document: keys and list indexes
Path_ = tuple[str | int, ...]


def load(provider: str, name: str) -> Any:
    return json.loads((FIXTURES / provider / name).read_bytes())


def as_json(document: Any, content_type: str = "application/json") -> WebhookRequest:
    body = json.dumps(document).encode()
    return WebhookRequest("POST", "http://gw/", {"content-type": content_type}, body)


def as_mandrill_form(document: Any) -> WebhookRequest:
    body = urllib.parse.urlencode({"mandrill_events": json.dumps(document)}).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return WebhookRequest("POST", "http://gw/", headers, body)


def as_ses_notification(message: Any) -> WebhookRequest:
    """An SNS Notification carrying ``message`` (the SES event) as its JSON string."""
    envelope = load("ses", "event_delivery.json")
    envelope["Message"] = json.dumps(message)
    return as_json(envelope, "text/plain")


@dataclass(frozen=True)
class Shape:
    """Where one ESP keeps each kind of field in its documented sample."""

    sample: Callable[[], Any]
    encode: Callable[[Any], WebhookRequest]
    event_type: Path_
    #: the recipient field, then its documented fallbacks (all removed for "missing")
    recipient: tuple[Path_, ...]
    event_time: Path_
    optional_text: Path_


SHAPES: dict[str, Shape] = {
    "sendgrid": Shape(
        lambda: load("sendgrid", "all_events.json")[2:3],
        as_json,
        (0, "event"),
        ((0, "email"),),
        (0, "timestamp"),
        (0, "useragent"),
    ),
    "mailgun": Shape(
        lambda: load("mailgun", "delivered.json"),
        as_json,
        ("event-data", "event"),
        (("event-data", "recipient"), ("event-data", "message", "headers", "to")),
        ("event-data", "timestamp"),
        ("event-data", "delivery-status", "message"),
    ),
    "postmark": Shape(
        lambda: load("postmark", "delivery.json"),
        as_json,
        ("RecordType",),
        (("Recipient",),),
        ("DeliveredAt",),
        ("Details",),
    ),
    "ses": Shape(
        lambda: json.loads(load("ses", "event_delivery.json")["Message"]),
        as_ses_notification,
        ("eventType",),
        (("delivery", "recipients"),),
        ("delivery", "timestamp"),
        ("delivery", "smtpResponse"),
    ),
    "sparkpost": Shape(
        lambda: load("sparkpost", "all_events.json")[:1],
        as_json,
        (0, "msys", "message_event", "type"),
        ((0, "msys", "message_event", "rcpt_to"),),
        (0, "msys", "message_event", "timestamp"),
        (0, "msys", "message_event", "ip_address"),
    ),
    "mailjet": Shape(
        lambda: load("mailjet", "grouped_events.json")[:1],
        as_json,
        (0, "event"),
        ((0, "email"),),
        (0, "time"),
        (0, "smtp_reply"),
    ),
    "mandrill": Shape(
        lambda: load("mandrill", "message_events.json")[:1],
        as_mandrill_form,
        (0, "event"),
        ((0, "msg", "email"),),
        (0, "ts"),
        (0, "msg", "diag"),
    ),
    "brevo": Shape(
        lambda: load("brevo", "delivered.json"),
        as_json,
        ("event",),
        (("email",),),
        ("ts_epoch",),
        ("message-id",),
    ),
    "resend": Shape(
        lambda: load("resend", "email_delivered.json"),
        as_json,
        ("type",),
        (("data", "to"),),
        ("created_at",),
        ("data", "broadcast_id"),
    ),
    "postal": Shape(
        lambda: load("postal", "message_sent.json"),
        as_json,
        ("event",),
        (("payload", "message", "to"),),
        ("payload", "timestamp"),
        ("payload", "details"),
    ),
}

_DELETE = object()


def changed(document: Any, path: Path_, value: Any) -> Any:
    """A deep copy of ``document`` with the field at ``path`` set (or removed: ``_DELETE``)."""
    result = copy.deepcopy(document)
    node = result
    for step in path[:-1]:
        node = node[step]
    if value is _DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return result


#: (what is malformed, which field, the value it gets, the outcome every adapter must give)
MALFORMATIONS: list[tuple[str, str, Any, str]] = [
    ("an optional string as an object", "optional_text", {"text": "x"}, "accepted"),
    ("an optional string as an array", "optional_text", [1, 2], "accepted"),
    ("an optional string as a boolean", "optional_text", True, "accepted"),
    ("the event time as garbage", "event_time", "garbage", "refused"),
    ("the event time as an object", "event_time", {"at": 1}, "refused"),
    ("the event type missing", "event_type", _DELETE, "refused"),
    ("the event type as a number", "event_type", 5, "refused"),
    ("the event type as an array", "event_type", ["delivered"], "refused"),
    ("the recipient missing", "recipient", _DELETE, "refused"),
    ("the recipient as a number", "recipient", 7, "refused"),
    ("the recipient as an object", "recipient", {"email": "a@example.com"}, "refused"),
]
CASES = [(provider, *malformation) for provider in PROVIDERS for malformation in MALFORMATIONS]


def outcome(provider: str, request: WebhookRequest) -> str:
    """``accepted``: events and nothing rejected; ``refused``: a PayloadError for the whole
    body, or its only item rejected (quarantined) with nothing stored."""
    source = SourceSpec(provider=provider, name="main")
    try:
        result = get_adapter(provider).parse(request, source, RECEIVED)
    except PayloadError:
        return "refused"
    if result.events and not result.rejected:
        return "accepted"
    if result.rejected and not result.events:
        return "refused"
    return f"other: {len(result.events)} events, {len(result.rejected)} rejected"


def test_every_provider_has_a_shape() -> None:
    """A provider added to the registry fails here until its fields are mapped."""
    assert set(SHAPES) == set(PROVIDERS)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_documented_samples_are_accepted_unchanged(provider: str) -> None:
    """The baseline: each ESP's sample, as documented, is accepted."""
    shape = SHAPES[provider]
    assert outcome(provider, shape.encode(shape.sample())) == "accepted"


@pytest.mark.parametrize(
    ("provider", "what", "kind", "value", "expected"),
    CASES,
    ids=[f"{case[0]}: {case[1]}" for case in CASES],
)
def test_the_same_malformation_has_the_same_outcome_everywhere(
    provider: str, what: str, kind: str, value: Any, expected: str
) -> None:
    """Every adapter gives the policy's outcome class for the same malformation."""
    shape = SHAPES[provider]
    document = shape.sample()
    if kind == "recipient":
        first, *fallbacks = shape.recipient
        document = changed(document, first, value)
        if value is _DELETE:
            for path in fallbacks:
                document = changed(document, path, _DELETE)
    else:
        document = changed(document, getattr(shape, kind), value)
    assert outcome(provider, shape.encode(document)) == expected, what
