"""SendGrid Inbound Parse posted to the Event Webhook URL (issue #17): a received email, sent
as an unsigned ``multipart/form-data`` post, is acknowledged as an ``inbound_message``
control message (200, nothing stored or acted on) instead of 415, which SendGrid retried
for days. Any other multipart body is still refused as a content type SendGrid does not
use for events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from handlers import sendgrid
from handlers.base import (
    AuthError,
    ContentTypeError,
    ControlKind,
    VerifyContext,
    WebhookRequest,
)
from hookline_testing import basic_auth_header, samples_for

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sendgrid"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
SOURCE, _KEY = samples_for("sendgrid").make_source("main")


def multipart(body: bytes, boundary: str = "xYzZY") -> WebhookRequest:
    """An unsigned multipart post, as SendGrid's Inbound Parse sends it."""
    return WebhookRequest(
        method="POST",
        url="http://127.0.0.1:8000/webhooks/sendgrid/main",
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        body=body,
    )


def form(**fields: str) -> bytes:
    parts = [
        f'--xYzZY\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return ("".join(parts) + "--xYzZY--\r\n").encode()


@pytest.mark.parametrize(
    ("fixture", "mode"),
    [("inbound_parse.multipart", "parsed"), ("inbound_parse_raw.multipart", "raw")],
)
async def test_inbound_parse_is_an_inbound_control_message(fixture: str, mode: str) -> None:
    """SendGrid's documented Inbound Parse fields (default and raw mode) pass the content
    type check and verification without a signature, and parse to no event and one
    ``inbound_message`` control message naming the mode (no address in its detail)."""
    request = multipart((FIXTURES / fixture).read_bytes())
    sendgrid.ADAPTER.check_content_type(request)
    await sendgrid.ADAPTER.verify(request, SOURCE, VerifyContext(now=NOW))
    result = sendgrid.ADAPTER.parse(request, SOURCE, NOW)
    assert result.events == []
    assert result.rejected == []
    assert result.control is not None
    assert result.control.kind == ControlKind.INBOUND_MESSAGE.value
    assert dict(result.control.detail) == {"mode": mode}
    assert result.control.confirm_url is None


@pytest.mark.parametrize(
    "body",
    [
        # an event batch in a form field is not how SendGrid sends events
        form(events='[{"email": "a@example.com", "event": "delivered"}]'),
        # an envelope without its addresses
        form(envelope='{"to": ["a@example.com"]}', headers="Subject: hi"),
        # an envelope that is not JSON
        form(envelope="to=a@example.com", headers="Subject: hi"),
        # an envelope, but neither the headers nor the raw message
        form(envelope='{"to": ["a@example.com"], "from": "b@example.com"}', text="hi"),
        # not a multipart body at all
        b"[]",
    ],
    ids=["event-in-form", "envelope-without-from", "envelope-not-json", "no-message", "json"],
)
async def test_any_other_multipart_body_is_refused_as_a_content_type(body: bytes) -> None:
    """A multipart body that is not an Inbound Parse post is a ContentTypeError (415) from
    verify and from parse: SendGrid's events are JSON, and nothing unsigned is taken."""
    request = multipart(body)
    with pytest.raises(ContentTypeError):
        await sendgrid.ADAPTER.verify(request, SOURCE, VerifyContext(now=NOW))
    with pytest.raises(ContentTypeError):
        sendgrid.ADAPTER.parse(request, SOURCE, NOW)


async def test_transport_auth_still_applies_to_inbound_parse() -> None:
    """A source with basic auth refuses an Inbound Parse post without the credentials and
    accepts it with them: only the (absent) signature is not checked."""
    source = replace(SOURCE, basic_auth="sendgrid:parse-secret")
    request = multipart((FIXTURES / "inbound_parse.multipart").read_bytes())
    with pytest.raises(AuthError):
        await sendgrid.ADAPTER.verify(request, source, VerifyContext(now=NOW))
    authorized = replace(
        request,
        headers={**request.headers, "authorization": basic_auth_header(source.basic_auth or "")},
    )
    await sendgrid.ADAPTER.verify(authorized, source, VerifyContext(now=NOW))


def test_other_content_types_are_still_refused() -> None:
    """Forms that are not multipart (urlencoded) and other types stay refused up front."""
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        request = replace(multipart(b""), headers={"content-type": content_type})
        with pytest.raises(ContentTypeError):
            sendgrid.ADAPTER.check_content_type(request)
