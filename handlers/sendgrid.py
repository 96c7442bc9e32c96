"""SendGrid Event Webhook: a JSON array of events, signed with ECDSA P-256.

Signature (Signed Event Webhook): ``X-Twilio-Email-Event-Webhook-Signature`` is a base64 DER
ECDSA signature, with SHA-256, over the ``X-Twilio-Email-Event-Webhook-Timestamp`` header
value followed by the exact raw body (which ends with ``\\r\\n``). ``signing_key`` is the
"Verification Key" SendGrid shows: a base64 DER SubjectPublicKeyInfo (PEM is accepted too).
The timestamp must be within ``replay_window_seconds`` of now.

Normalization: ``processed`` -> queued; ``dropped`` -> dropped; ``deferred`` -> deferred;
``bounce`` -> bounced, hard for ``type=bounce``, soft for ``type=blocked`` and ``expired``
(delivery gave up after retries), undetermined otherwise; ``open`` -> opened with
``machine_open`` from ``sg_machine_open``; ``spamreport`` -> complained; ``unsubscribe`` and
``group_unsubscribe`` -> unsubscribed; ``group_resubscribe`` -> resubscribed.

``message_id`` is the ``X-Message-Id`` the send API returned: ``sg_message_id`` up to its
first dot. Custom args are the top-level keys SendGrid does not define; they become
``metadata``. ``category`` (string or list) becomes ``tags``.
"""

from __future__ import annotations

import base64
import binascii
import functools
from datetime import datetime
from typing import Any, ClassVar

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from handlers._common import (
    decode_json,
    default_url,
    epoch_to_utc,
    expect_list,
    expect_object,
    opt_bool,
    opt_str,
    req_str,
    smtp_status_from_text,
    tags_from,
)
from handlers.base import (
    Adapter,
    AuthError,
    ParseResult,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
    check_replay_window,
    parse_timestamp_header,
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
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SendGridAdapter",
    "example_body",
    "load_verification_key",
    "make_test_source",
    "signed_request",
]

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"

EVENT_TYPES: dict[str, EventType] = {
    "processed": EventType.QUEUED,
    "dropped": EventType.DROPPED,
    "delivered": EventType.DELIVERED,
    "deferred": EventType.DEFERRED,
    "bounce": EventType.BOUNCED,
    "open": EventType.OPENED,
    "click": EventType.CLICKED,
    "spamreport": EventType.COMPLAINED,
    "unsubscribe": EventType.UNSUBSCRIBED,
    "group_unsubscribe": EventType.UNSUBSCRIBED,
    "group_resubscribe": EventType.RESUBSCRIBED,
}

BOUNCE_CLASSES: dict[str, BounceClass] = {
    "bounce": BounceClass.HARD,
    "blocked": BounceClass.SOFT,
    "expired": BounceClass.SOFT,
}

#: top-level keys SendGrid itself defines; every other key is a custom arg (metadata)
STANDARD_KEYS = frozenset(
    {
        "email",
        "timestamp",
        "smtp-id",
        "event",
        "category",
        "sg_event_id",
        "sg_message_id",
        "sg_template_id",
        "sg_template_name",
        "sg_content_type",
        "sg_machine_open",
        "sg_user_id",
        "response",
        "attempt",
        "reason",
        "status",
        "type",
        "bounce_classification",
        "useragent",
        "ip",
        "url",
        "url_offset",
        "asm_group_id",
        "tls",
        "cert_err",
        "marketing_campaign_id",
        "marketing_campaign_name",
        "marketing_campaign_version",
        "marketing_campaign_split_id",
        "singlesend_id",
        "singlesend_name",
        "template_id",
        "template_name",
        "template_version_id",
        "template_hash",
        "mc_stats",
        "phase_id",
        "variation_id",
        "send_at",
        "pool",
        "newsletter",
        "nlvx_campaign_id",
        "nlvx_campaign_split_id",
        "nlvx_user_id",
        "post_type",
        "anymail_id",
    }
)


@functools.lru_cache(maxsize=64)
def load_verification_key(signing_key: str) -> ec.EllipticCurvePublicKey:
    """Parse a Verification Key (base64 DER SubjectPublicKeyInfo, or PEM) once per key.

    Raises ``ValueError`` if it is not an EC public key (``check-config`` can call this)."""
    text = signing_key.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("signing_key is not a SendGrid verification key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("signing_key is not an ECDSA public key")
    return key


class SendGridAdapter(Adapter):
    """SendGrid's Event Webhook (signed)."""

    provider: ClassVar[str] = "sendgrid"
    content_types: ClassVar[tuple[str, ...]] = ("application/json",)
    signs_requests: ClassVar[bool] = True
    required_fields: ClassVar[tuple[str, ...]] = ("signing_key",)

    def check_source(self, source: SourceSpec) -> None:
        if source.signing_key is not None:
            load_verification_key(source.signing_key)

    async def verify(
        self, request: WebhookRequest, source: SourceSpec, context: VerifyContext
    ) -> None:
        self.verify_transport_auth(request, source)
        if source.signing_key is None:
            if source.allow_unauthenticated:
                return
            raise AuthError("missing", "no signing key configured")
        signature_b64 = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if not signature_b64 or not timestamp:
            raise AuthError("missing")
        signed_at = parse_timestamp_header(timestamp)
        try:
            signature = base64.b64decode(signature_b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise AuthError("invalid") from None
        try:
            key = load_verification_key(source.signing_key)
        except ValueError:
            raise AuthError("invalid", "signing_key is not a valid verification key") from None
        try:
            key.verify(signature, timestamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise AuthError("invalid") from None
        check_replay_window(signed_at, context.now, source.replay_window_seconds)

    def parse(
        self, request: WebhookRequest, source: SourceSpec, received_at: datetime
    ) -> ParseResult:
        items = expect_list(decode_json(request.body), "body")
        events = [
            self._event(expect_object(item, f"[{i}]"), f"[{i}]", source, received_at)
            for i, item in enumerate(items)
        ]
        return ParseResult(events=events)

    def _event(
        self, raw: dict[str, Any], path: str, source: SourceSpec, received_at: datetime
    ) -> EmailEvent:
        esp_event = req_str(raw, "event", path)
        recipient = req_str(raw, "email", path)
        event_type = EVENT_TYPES.get(esp_event, EventType.UNKNOWN)
        occurred_at = (
            epoch_to_utc(raw["timestamp"], f"{path}.timestamp")
            if raw.get("timestamp") is not None
            else received_at
        )
        sg_event_id = opt_str(raw, "sg_event_id", path)
        sg_message_id = opt_str(raw, "sg_message_id", path)
        message_id = sg_message_id.split(".", 1)[0] if sg_message_id else None

        response = opt_str(raw, "response", path)
        reason_text = opt_str(raw, "reason", path)
        status = opt_str(raw, "status", path)
        bounce_class: BounceClass | None = None
        reason: str | None = None
        diagnostic: str | None = None
        if event_type is EventType.BOUNCED:
            bounce_type = opt_str(raw, "type", path)
            bounce_class = BOUNCE_CLASSES.get(bounce_type or "", BounceClass.UNDETERMINED)
            reason = opt_str(raw, "bounce_classification", path) or bounce_type
            diagnostic = reason_text or response
        elif event_type is EventType.DROPPED:
            reason = reason_text or opt_str(raw, "type", path)
            diagnostic = response
        else:
            reason = reason_text
            diagnostic = response
        smtp_status = status or smtp_status_from_text(diagnostic)

        campaign = (
            opt_str(raw, "marketing_campaign_name", path)
            or opt_str(raw, "marketing_campaign_id", path)
            or opt_str(raw, "singlesend_name", path)
        )
        metadata = {key: value for key, value in raw.items() if key not in STANDARD_KEYS}
        return EmailEvent(
            provider=self.provider,
            source=source.name,
            event_type=event_type,
            occurred_at=occurred_at,
            received_at=received_at,
            recipient=recipient,
            message_id=message_id,
            provider_event_id=sg_event_id,
            dedup_key=(
                id_dedup_key(self.provider, sg_event_id)
                if sg_event_id
                else content_dedup_key(self.provider, raw)
            ),
            esp_event=esp_event,
            bounce_class=bounce_class,
            reason=reason,
            smtp_status=smtp_status,
            diagnostic=diagnostic,
            url=opt_str(raw, "url", path) if event_type is EventType.CLICKED else None,
            user_agent=opt_str(raw, "useragent", path),
            ip=opt_str(raw, "ip", path),
            machine_open=opt_bool(raw, "sg_machine_open", path),
            campaign=campaign,
            tags=tags_from(raw.get("category"), f"{path}.category"),
            metadata=metadata,
            raw=raw,
        )


ADAPTER = SendGridAdapter()


# ---------------------------------------------------------------------------------------
# Test and load-test helpers: sign traffic the way SendGrid does.
# ---------------------------------------------------------------------------------------

_EXAMPLE_EXTRA: dict[str, dict[str, Any]] = {
    "processed": {"pool": {"name": "transactional", "id": 210}},
    "dropped": {"reason": "Bounced Address", "status": "5.0.0"},
    "delivered": {"response": "250 2.0.0 OK 1700000000 a1si12345qkb.1 - gsmtp", "ip": "149.72.1.2"},
    "deferred": {"response": "451 4.7.1 Greylisted, try again later", "attempt": "1"},
    "bounce": {
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist",
        "bounce_classification": "Invalid Address",
    },
    "open": {"useragent": "Mozilla/5.0", "ip": "203.0.113.9", "sg_machine_open": False},
    "click": {"useragent": "Mozilla/5.0", "ip": "203.0.113.9", "url": "https://example.com/a"},
    "spamreport": {},
    "unsubscribe": {},
    "group_unsubscribe": {"asm_group_id": 42},
    "group_resubscribe": {"asm_group_id": 42},
}


def make_test_source(name: str = "test", **overrides: Any) -> tuple[SourceSpec, Any]:
    """A SourceSpec with a fresh P-256 verification key, and the private key that signs."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fields: dict[str, Any] = {"signing_key": base64.b64encode(der).decode("ascii")}
    fields.update(overrides)
    return SourceSpec(provider="sendgrid", name=name, **fields), private_key


def example_body(count: int = 1, *, seed: int = 0, event: str | None = None) -> bytes:
    """A SendGrid batch of ``count`` events (default ``delivered``), distinct per seed."""
    event_name = event or "delivered"
    items = []
    for index in range(count):
        unique = f"{seed:08x}{index:08x}"
        item: dict[str, Any] = {
            "email": f"user{seed}-{index}@example.com",
            "timestamp": 1700000000 + index,
            "smtp-id": f"<{unique}@ismtpd0001p1lon1.sendgrid.net>",
            "event": event_name,
            "category": ["transactional"],
            "sg_event_id": f"ZGVsaXZlcmVk-{unique}",
            "sg_message_id": f"msg{unique}.filterdrecv-5645d9c87f-abcde-1-6548A1B2-3.0",
            "order_id": f"order-{seed}-{index}",
        }
        item.update(_EXAMPLE_EXTRA.get(event_name, {}))
        items.append(item)
    return msgspec.json.encode(items) + b"\r\n"


def signed_request(
    source: SourceSpec,
    material: Any,
    body: bytes,
    *,
    now: datetime,
    url: str | None = None,
) -> WebhookRequest:
    """The POST SendGrid would send: JSON body plus the two signature headers."""
    if not isinstance(material, ec.EllipticCurvePrivateKey):
        raise TypeError("material must be the EC private key from make_test_source")
    timestamp = str(int(now.timestamp()))
    signature = material.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return WebhookRequest(
        method="POST",
        url=url or default_url(source),
        headers={
            "content-type": "application/json",
            SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
            TIMESTAMP_HEADER: timestamp,
        },
        body=body,
    )
