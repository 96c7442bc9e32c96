"""Mailgun webhooks (the JSON format since 2018): one event per request.

Body: ``{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}``.
``signature`` is the hex HMAC-SHA256 of ``timestamp + token`` keyed with the domain's HTTP
webhook signing key; the timestamp must be within ``replay_window_seconds`` of now. The
signature does not cover ``event-data``, so ``parse`` returns the token as the nonce and a
SHA-256 of the exact raw body as its digest: the gateway refuses a token seen before with
other content (a forgery built on a captured signature) and treats the same content as a
redelivery. Legacy form-encoded webhooks (before 2018) are not accepted. A form that is a
message an inbound route forwards (``body-plain``, ``message-headers`` ..., signed with the
same key) is verified and acknowledged as a ``ControlMessage`` (``inbound_message``).

Normalization of ``event``: ``accepted`` -> queued, ``rejected`` -> dropped,
``delivered``, ``opened``, ``clicked``, ``unsubscribed``, ``complained`` as named, and
``failed`` by severity and reason:

* ``reason`` ``suppress-bounce`` / ``suppress-complaint`` / ``suppress-unsubscribe`` (any
  ``suppress-*``) -> **dropped**: Mailgun documents that it drops messages to addresses on
  its "do not send" lists without attempting delivery, so nothing bounced and nothing
  should count against the bounce rate (the earlier bounce or complaint already did).
* ``reason`` ``old`` -> bounced, soft: Mailgun gave up retrying; the failure is final but
  the address may be valid (whatever the severity field says).
* ``severity`` ``permanent`` -> bounced, hard (``bounce``, ``espblock``, ``generic``...).
* ``severity`` ``temporary`` -> deferred (Mailgun retries).
* anything else -> bounced, undetermined.

``opened``/``clicked`` with a non-empty ``client-info.bot`` (``apple``, ``gmail``,
``generic``: Mailgun's bot detection) set ``machine_open``.

``message_id`` is ``message.headers.message-id`` without angle brackets (what the send API
returned, bracketed); ``provider_event_id`` is ``event-data.id``; ``user-variables`` is the
metadata, ``tags`` the tags and the first of ``campaigns`` the campaign. ``raw`` is the
``event-data`` object (the signature block is transport, not event). Time: the event's
``timestamp``, else ``signature.timestamp`` (when Mailgun signed it), else the receipt time.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.utils import getaddresses
from typing import Any, ClassVar

from handlers._common import (
    check_json_depth,
    decode_json,
    epoch_to_utc,
    event_time,
    expect_object,
    lenient,
    opt_object,
    opt_str,
    opt_time,
    recipient_at,
    req_str,
    smtp_status_from_text,
    strip_angle_brackets,
    tags_from,
)
from handlers._forms import FORM_TYPES, form_fields
from handlers.addresses import canonical_address
from handlers.base import (
    Adapter,
    AuthError,
    ControlKind,
    ControlMessage,
    ParseResult,
    PayloadError,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
    check_replay_window,
    constant_time_equals,
    hmac_digest,
)
from handlers.events import (
    BounceClass,
    EmailEvent,
    EventType,
    content_dedup_key,
    id_dedup_key,
)

__all__ = [
    "ADAPTER",
    "MailgunAdapter",
    "sign",
]

EVENT_TYPES: dict[str, EventType] = {
    "accepted": EventType.QUEUED,
    "rejected": EventType.DROPPED,
    "delivered": EventType.DELIVERED,
    "failed": EventType.BOUNCED,
    "opened": EventType.OPENED,
    "clicked": EventType.CLICKED,
    "unsubscribed": EventType.UNSUBSCRIBED,
    "complained": EventType.COMPLAINED,
}

ED = "event-data"


def sign(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's signature: hex HMAC-SHA256 of timestamp + token."""
    return hmac_digest(signing_key.encode(), (timestamp + token).encode()).hex()


def _failed_outcome(
    severity: str | None, reason: str | None
) -> tuple[EventType, BounceClass | None]:
    """A ``failed`` event's normalized type and bounce class (see the module docstring)."""
    if reason and reason.startswith("suppress-"):
        return EventType.DROPPED, None
    if reason == "old":
        return EventType.BOUNCED, BounceClass.SOFT
    if severity == "permanent":
        return EventType.BOUNCED, BounceClass.HARD
    if severity == "temporary":
        return EventType.DEFERRED, None
    return EventType.BOUNCED, BounceClass.UNDETERMINED


class MailgunAdapter(Adapter):
    """Mailgun's JSON webhooks (HMAC over timestamp + token, nonce-checked)."""

    provider: ClassVar[str] = "mailgun"
    #: forms only to recognise an inbound route pointed at the tracking URL (see parse)
    content_types: ClassVar[tuple[str, ...]] = ("application/json", *FORM_TYPES)
    signs_requests: ClassVar[bool] = True
    required_fields: ClassVar[tuple[str, ...]] = ("signing_key",)

    async def verify(
        self, request: WebhookRequest, source: SourceSpec, context: VerifyContext
    ) -> None:
        self.verify_transport_auth(request, source)
        if source.signing_key is None:
            if source.allow_unauthenticated:
                return
            raise AuthError("missing", "no signing key configured")
        if request.content_type in FORM_TYPES:
            timestamp, token, signature = _form_signature(request)
        else:
            timestamp, token, signature = _signature_block(request.body)
        expected = sign(source.signing_key, timestamp, token)
        if not constant_time_equals(signature.lower(), expected):
            raise AuthError("invalid")
        try:
            signed_at = epoch_to_utc(timestamp, "signature.timestamp")
        except PayloadError:
            raise AuthError("invalid") from None
        check_replay_window(signed_at, context.now, source.replay_window_seconds)

    def parse(
        self, request: WebhookRequest, source: SourceSpec, received_at: datetime
    ) -> ParseResult:
        if request.content_type in FORM_TYPES:
            fields = form_fields(request)
            if INBOUND_FIELDS & fields.keys() and "event" not in fields:
                return ParseResult(
                    events=[],
                    control=ControlMessage(kind=ControlKind.INBOUND_MESSAGE.value, detail={}),
                    nonce=fields.get("token") or None,
                    nonce_digest=hashlib.sha256(request.body).hexdigest(),
                )
            raise PayloadError("Mailgun event webhooks are JSON (legacy form webhooks are not)")
        body = expect_object(decode_json(request.body), "body")
        data = expect_object(body.get(ED), ED)
        signature = opt_object(body, "signature")
        token = opt_str(signature, "token") if signature else None
        # the envelope's time (when Mailgun signed the request), for an undated event
        signed_at = lenient(epoch_to_utc, signature.get("timestamp")) if signature else None
        event = self._event(data, source, received_at, signed_at)
        return ParseResult(
            events=[event],
            nonce=token or None,
            nonce_digest=hashlib.sha256(request.body).hexdigest(),
        )

    def _event(
        self,
        data: dict[str, Any],
        source: SourceSpec,
        received_at: datetime,
        signed_at: datetime | None = None,
    ) -> EmailEvent:
        esp_event = req_str(data, "event", ED)
        event_type = EVENT_TYPES.get(esp_event, EventType.UNKNOWN)
        severity = opt_str(data, "severity")
        reason = opt_str(data, "reason")
        bounce_class: BounceClass | None = None
        if esp_event == "failed":
            event_type, bounce_class = _failed_outcome(severity, reason)

        message = opt_object(data, "message") or {}
        headers = opt_object(message, "headers") or {}
        recipient = _recipient(data, headers, required=esp_event in EVENT_TYPES)
        message_id = strip_angle_brackets(opt_str(headers, "message-id"))

        status = opt_object(data, "delivery-status") or {}
        mta_message = opt_str(status, "message")
        description = opt_str(status, "description")
        diagnostic = mta_message or description or None
        code = opt_str(status, "code")
        smtp_status = (
            opt_str(status, "enhanced-code")
            or opt_str(status, "bounce-code")
            or (code if code and code != "0" else None)
            or smtp_status_from_text(diagnostic)
        )
        if reason is None and esp_event == "rejected":
            reject = opt_object(data, "reject") or {}
            reason = opt_str(reject, "reason")

        client = opt_object(data, "client-info") or {}
        bot = opt_str(client, "bot")
        metadata = opt_object(data, "user-variables") or {}
        event_id = opt_str(data, "id")
        occurred_at, time_source = event_time(
            received_at, opt_time(data, "timestamp", ED), signed_at
        )
        return EmailEvent(
            provider=self.provider,
            source=source.name,
            event_type=event_type,
            occurred_at=occurred_at,
            received_at=received_at,
            recipient=canonical_address(recipient),
            message_id=message_id,
            provider_event_id=event_id,
            dedup_key=(
                id_dedup_key(self.provider, event_id)
                if event_id
                else content_dedup_key(self.provider, data)
            ),
            esp_event=esp_event,
            bounce_class=bounce_class,
            reason=reason or None,
            smtp_status=smtp_status,
            diagnostic=diagnostic,
            url=opt_str(data, "url"),
            user_agent=opt_str(client, "user-agent"),
            ip=opt_str(data, "ip"),
            machine_open=bool(bot),
            campaign=_campaign(data.get("campaigns")),
            tags=tags_from(data.get("tags")),
            metadata=metadata,
            raw=data,
            time_source=time_source,
        )


def _recipient(data: dict[str, Any], headers: dict[str, Any], *, required: bool) -> str | None:
    """``recipient``, else the first address of the ``To`` header (``rejected`` events carry
    no recipient); required for a known event (a ``recipient`` of the wrong type too)."""
    if data.get("recipient") is not None:
        return recipient_at(data, "recipient", ED, required=required)
    recipient = _first_address(opt_str(headers, "to"))
    if recipient is None and required:
        raise PayloadError(f"{ED}.recipient is required", f"{ED}.recipient")
    return recipient


def _first_address(header: str | None) -> str | None:
    """The first address of a ``To`` header (``rejected`` events carry no recipient)."""
    if not header:
        return None
    addresses = [address for _, address in getaddresses([header]) if address]
    return addresses[0] if addresses else None


def _campaign(value: Any) -> str | None:
    """The first of ``campaigns`` (its name, else its id); None when there is none."""
    first = value[0] if isinstance(value, list) and value else None
    if not isinstance(first, dict):
        return None
    return opt_str(first, "name") or opt_str(first, "id")


#: fields of a message a Mailgun route forwards (a received email)
INBOUND_FIELDS = frozenset({"body-plain", "body-mime", "message-headers", "stripped-text"})


def _form_signature(request: WebhookRequest) -> tuple[str, str, str]:
    """timestamp, token, signature from a form body (Mailgun signs forwarded inbound
    messages with the same key); ``AuthError('missing')`` if absent."""
    try:
        fields = form_fields(request)
    except PayloadError:
        raise AuthError("missing") from None
    values = tuple(fields.get(name, "") for name in ("timestamp", "token", "signature"))
    if not all(values):
        raise AuthError("missing")
    return values[0], values[1], values[2]


def _signature_block(body: bytes) -> tuple[str, str, str]:
    """timestamp, token, signature from the body; ``AuthError('missing')`` if absent.

    The signature lives inside the body, so the body is decoded before anything is
    authenticated: its depth is checked first (``PayloadError``, 400), so an
    unauthenticated request gets no more than linear work over its bytes."""
    check_json_depth(body)
    try:
        decoded = decode_json(body)
        block = expect_object(expect_object(decoded, "body").get("signature"), "signature")
        timestamp = req_str(block, "timestamp", "signature", numbers=True)
        token = req_str(block, "token", "signature")
        signature = req_str(block, "signature", "signature")
    except PayloadError:
        raise AuthError("missing") from None
    return timestamp, token, signature


ADAPTER = MailgunAdapter()
