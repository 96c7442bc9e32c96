"""Postal samples: one webhook per request, signed with the server's RSA key (both the
SHA-256 and the legacy SHA-1 header), as Postal signs them."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from handlers.base import SourceSpec, WebhookRequest
from handlers.postal import _EVENT_TYPES
from hookline_testing._samples import Samples

#: every webhook event Postal documents
POSTAL_EVENTS = (
    *_EVENT_TYPES,
    "DomainDNSError",
    "SendLimitApproaching",
    "SendLimitExceeded",
)
_NAMESPACE = uuid.UUID("0f4f1c55-2a4e-4d8e-8b8c-6f0d7f3c9a21")
_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def make_test_source(name: str = "test", **overrides: Any) -> tuple[SourceSpec, Any]:
    """A source holding a fresh RSA public key the way Postal shows it (bare base64 DER);
    the material is the private key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    source = SourceSpec(
        provider="postal", name=name, signing_key=base64.b64encode(der).decode("ascii")
    )
    return replace(source, **overrides), key


def _message(seed: int, at: datetime, **fields: Any) -> dict[str, Any]:
    message = {
        "id": 12345 + seed,
        "token": f"tok{seed:06d}",
        "direction": "outgoing",
        "message_id": f"{uuid.uuid5(_NAMESPACE, f'message:{seed}').hex}@mail.example.com",
        "to": f"recipient0.{seed}@example.com",
        "from": "sales@example.com",
        "subject": "Welcome to AwesomeApp",
        "timestamp": at.timestamp() - 2,
        "spam_status": "NotSpam",
        "tag": "welcome",
    }
    message.update(fields)
    return message


_STATUS = {
    "MessageSent": ("Sent", "250 2.0.0 OK 1477944899 ly2si31746747wjb.95 - gsmtp"),
    "MessageDelayed": ("SoftFail", "421 4.7.0 Try again later, closing connection."),
    "MessageDeliveryFailed": ("HardFail", "550 5.1.1 The email account does not exist."),
    "MessageHeld": ("Held", ""),
}


def _payload(event: str, seed: int, at: datetime) -> dict[str, Any]:
    message = _message(seed, at)
    if event in _STATUS:
        status, output = _STATUS[event]
        return {
            "status": status,
            "details": f"{status}: message to mx.example.net (192.0.2.25)",
            "output": output,
            "time": 0.22,
            "sent_with_ssl": True,
            "timestamp": at.timestamp(),
            "message": message,
        }
    if event == "MessageBounced":
        bounce = _message(
            seed + 1_000_000,
            at,
            direction="incoming",
            to="abcde@psrp.postal.example.com",
            subject="Delivery Error",
            tag=None,
        )
        return {"original_message": message, "bounce": bounce}
    if event == "MessageLinkClicked":
        return {
            "url": "https://example.com/welcome",
            "token": "VJzsFA0S",
            "ip_address": "185.22.208.2",
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6)",
            "message": message,
        }
    if event == "MessageLoaded":
        return {
            "ip_address": "185.22.208.2",
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6)",
            "message": message,
        }
    server = {
        "uuid": "54529725-8807-4069-ab29-a3746c1bbd98",
        "name": "AwesomeApp Mail Server",
        "permalink": "awesomeapp",
        "organization": "atech",
    }
    if event == "DomainDNSError":
        return {
            "domain": "example.com",
            "uuid": str(uuid.uuid5(_NAMESPACE, f"domain:{seed}")),
            "dns_checked_at": at.timestamp(),
            "spf_status": "OK",
            "spf_error": None,
            "dkim_status": "Invalid",
            "dkim_error": "The DKIM record at example.com does not match.",
            "mx_status": "Missing",
            "mx_error": None,
            "return_path_status": "OK",
            "return_path_error": None,
            "server": server,
        }
    if event in ("SendLimitApproaching", "SendLimitExceeded"):
        return {"server": server, "volume": 950, "limit": 1000}
    raise ValueError(f"unknown Postal event {event!r} (known: {', '.join(POSTAL_EVENTS)})")


def example_body(
    count: int = 1, *, seed: int = 0, event: str | None = None, now: datetime | None = None
) -> bytes:
    """One Postal webhook (default ``MessageSent``); Postal sends one event per request.
    ``now`` dates it (default: a fixed date in 2025, offset by the seed)."""
    if count != 1:
        raise ValueError("Postal sends one event per request")
    kind = event or "MessageSent"
    at = now if now is not None else _EPOCH + timedelta(minutes=seed)
    body = {
        "event": kind,
        "timestamp": at.timestamp(),
        "uuid": str(uuid.uuid5(_NAMESPACE, f"webhook:{seed}:{kind}")),
        "payload": _payload(kind, seed, at),
    }
    return json.dumps(body).encode("utf-8")


def signed_request(
    source: SourceSpec,
    material: Any,
    body: bytes,
    *,
    now: datetime,
    url: str | None = None,
) -> WebhookRequest:
    """The POST Postal would send: both signature headers over ``body`` (no timestamp:
    ``now`` is unused)."""
    key: rsa.RSAPrivateKey = material
    return WebhookRequest(
        method="POST",
        url=url or f"http://127.0.0.1:8000/webhooks/postal/{source.name}",
        headers={
            "content-type": "application/json",
            "user-agent": "Postal/3.3.7",
            "x-postal-signature-256": base64.b64encode(
                key.sign(body, padding.PKCS1v15(), hashes.SHA256())
            ).decode("ascii"),
            "x-postal-signature": base64.b64encode(
                key.sign(body, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - Postal's legacy header
            ).decode("ascii"),
        },
        body=body,
    )


SAMPLES = Samples(
    provider="postal",
    traffic_share=2,
    make_source=make_test_source,
    example_body=example_body,
    signed_request=signed_request,
    events=POSTAL_EVENTS,
    one_event_per_request=True,
    # Postal's webhooks carry no custom data (only the message's tag): nothing to search
    add_metadata=None,
)
