"""Postal webhooks (self-hosted mail server).

Postal signs the raw body with the mail server's RSA key: ``X-Postal-Signature-256`` is
base64 RSA-SHA256 (PKCS#1 v1.5) and is what we verify when present;
``X-Postal-Signature`` (RSA-SHA1) is accepted only when the 256 header is absent (older
Postal). ``signing_key`` is the public key as PEM, or as the bare base64 DER Postal shows
(SubjectPublicKeyInfo, or PKCS#1 RSAPublicKey).

There is no signed timestamp (Postal retries for about 36 minutes), so no replay window:
the envelope ``uuid`` is the same for every attempt and is the dedup key. One event per
request: ``{"event": ..., "timestamp": ..., "uuid": ..., "payload": {...}}``.

An event whose message has ``direction: incoming`` is about mail Postal *received* (e.g.
``MessageDeliveryFailed`` when forwarding to the inbound HTTP endpoint failed): it is a
``ControlMessage`` (``inbound_event``), never a bounce of the organisation's own address.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from handlers._common import (
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
    tags_from,
)
from handlers.addresses import canonical_address
from handlers.base import (
    Adapter,
    AuthError,
    ControlKind,
    ParseResult,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import BounceClass, EmailEvent, EventType, content_dedup_key, id_dedup_key

__all__ = [
    "ADAPTER",
    "PostalAdapter",
    "load_public_key",
]

_EVENT_TYPES = {
    "MessageSent": EventType.DELIVERED,
    "MessageDelayed": EventType.DEFERRED,
    "MessageDeliveryFailed": EventType.BOUNCED,
    # held for review (suppression list, spam, send limit): not sent unless someone
    # releases it, in which case a MessageSent follows. Deferred, not dropped: dropped is
    # terminal and would outrank the later delivery in the message's status
    "MessageHeld": EventType.DEFERRED,
    "MessageBounced": EventType.BOUNCED,
    "MessageLinkClicked": EventType.CLICKED,
    "MessageLoaded": EventType.OPENED,
}
_MESSAGE_KEY = {"MessageBounced": "original_message"}


@lru_cache(maxsize=64)
def load_public_key(signing_key: str) -> rsa.RSAPublicKey:
    """The RSA public key in ``signing_key`` (PEM, or base64 DER: SPKI or PKCS#1)."""
    text = signing_key.strip()
    loaders: list[Any]
    if text.startswith("-----BEGIN"):
        data = text.encode("ascii", errors="replace")
        loaders = [serialization.load_pem_public_key]
    else:
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("signing_key is neither PEM nor base64 DER") from None
        loaders = [serialization.load_der_public_key, _load_pkcs1_der]
    for loader in loaders:
        try:
            key = loader(data)
        except (ValueError, UnsupportedAlgorithm):
            continue
        if isinstance(key, rsa.RSAPublicKey):
            return key
    raise ValueError("signing_key is not an RSA public key")


def _load_pkcs1_der(data: bytes) -> Any:
    pem = (
        b"-----BEGIN RSA PUBLIC KEY-----\n"
        + base64.encodebytes(data)
        + b"-----END RSA PUBLIC KEY-----\n"
    )
    return serialization.load_pem_public_key(pem)


class PostalAdapter(Adapter):
    """Postal: RSA signatures over the raw body, one event per request."""

    provider = "postal"
    required_fields = ("signing_key",)

    def check_source(self, source: SourceSpec) -> None:
        if source.signing_key is not None:
            load_public_key(source.signing_key)

    async def verify(
        self, request: WebhookRequest, source: SourceSpec, context: VerifyContext
    ) -> None:
        self.verify_transport_auth(request, source)
        header = request.headers.get("x-postal-signature-256")
        algorithm: hashes.HashAlgorithm = hashes.SHA256()
        if header is None:
            header = request.headers.get("x-postal-signature")
            algorithm = hashes.SHA1()  # noqa: S303 - Postal's legacy header is RSA-SHA1
        if not header:
            raise AuthError("missing", "X-Postal-Signature-256 is required")
        if not source.signing_key:
            raise AuthError("invalid", "no signing_key configured")
        try:
            key = load_public_key(source.signing_key)
        except ValueError:
            raise AuthError("invalid", "configured signing_key is not an RSA public key") from None
        try:
            signature = base64.b64decode("".join(header.split()), validate=True)
            key.verify(signature, request.body, padding.PKCS1v15(), algorithm)
        except (binascii.Error, ValueError, InvalidSignature):
            raise AuthError("invalid") from None

    def parse(
        self, request: WebhookRequest, source: SourceSpec, received_at: datetime
    ) -> ParseResult:
        body = expect_object(decode_json(request.body), "body")
        esp_event = req_str(body, "event")
        payload = expect_object(body.get("payload"), "payload")
        event_type = _EVENT_TYPES.get(esp_event, EventType.UNKNOWN)
        message_key = _MESSAGE_KEY.get(esp_event, "message")
        if opt_str(opt_object(payload, message_key) or {}, "direction") == "incoming":
            # about a message Postal received (e.g. it could not forward it to the inbound
            # HTTP endpoint): the "recipient" is the organisation's own inbound address
            return ParseResult.non_tracking(ControlKind.INBOUND_EVENT, esp_event=esp_event)
        known = event_type is not EventType.UNKNOWN
        message_path = f"payload.{message_key}"
        if known:
            message = expect_object(payload.get(message_key), message_path)
        else:
            message = opt_object(payload, message_key) or {}
        recipient = recipient_at(message, "to", message_path, required=known)
        # the payload's time is the event's; the envelope's, when Postal sent the webhook
        occurred_at, time_source = event_time(
            received_at,
            opt_time(payload, "timestamp", "payload"),
            lenient(epoch_to_utc, body.get("timestamp")),
        )
        event_uuid = opt_str(body, "uuid")
        details = opt_str(payload, "details")
        output = opt_str(payload, "output")
        event = EmailEvent(
            provider=self.provider,
            source=source.name,
            event_type=event_type,
            occurred_at=occurred_at,
            received_at=received_at,
            recipient=canonical_address(recipient),
            message_id=opt_str(message, "message_id"),
            dedup_key=(
                id_dedup_key(self.provider, event_uuid)
                if event_uuid
                else content_dedup_key(self.provider, body)
            ),
            provider_event_id=event_uuid,
            esp_event=esp_event,
            bounce_class=_bounce_class(esp_event, payload),
            reason=opt_str(payload, "status") if details is None else details,
            smtp_status=smtp_status_from_text(output),
            diagnostic=output,
            url=opt_str(payload, "url"),
            user_agent=opt_str(payload, "user_agent"),
            ip=opt_str(payload, "ip_address"),
            tags=tags_from(message.get("tag")),
            raw=body,
            time_source=time_source,
        )
        return ParseResult(events=[event])


def _bounce_class(esp_event: str, payload: dict[str, Any]) -> BounceClass | None:
    if esp_event == "MessageDeliveryFailed":
        return BounceClass.HARD
    if esp_event != "MessageBounced":
        return None
    # stock Postal does not classify bounces; some builds add bounce.bounce_type
    bounce_type = opt_str(opt_object(payload, "bounce") or {}, "bounce_type")
    return {"hard": BounceClass.HARD, "soft": BounceClass.SOFT}.get(
        (bounce_type or "").lower(), BounceClass.UNDETERMINED
    )


ADAPTER = PostalAdapter()
