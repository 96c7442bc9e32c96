"""SendGrid samples: Event Webhook batches signed with ECDSA P-256 (the signed-webhook
scheme), as SendGrid signs them."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from handlers import sendgrid
from handlers.base import SourceSpec, WebhookRequest
from handlers.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from hookline_testing._batch import json_array, top_level
from hookline_testing._http import default_url
from hookline_testing._samples import Samples

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


def example_body(
    count: int = 1, *, seed: int = 0, event: str | None = None, now: datetime | None = None
) -> bytes:
    """A SendGrid batch of ``count`` events (default ``delivered``), distinct per seed;
    ``now`` dates them (default: a fixed date in November 2023)."""
    base = int(now.timestamp()) if now is not None else 1700000000
    event_name = event or "delivered"
    items = []
    for index in range(count):
        unique = f"{seed:08x}{index:08x}"
        item: dict[str, Any] = {
            "email": f"user{seed}-{index}@example.com",
            "timestamp": base + index,
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


def add_metadata(body: bytes, key: str, value: str) -> bytes:
    """Custom args: top-level fields of the (first) event."""
    items = msgspec.json.decode(body)
    items[0][key] = value
    return msgspec.json.encode(items)


SAMPLES = Samples(
    provider="sendgrid",
    traffic_share=25,
    make_source=make_test_source,
    example_body=example_body,
    signed_request=signed_request,
    events=tuple(sendgrid.EVENT_TYPES),
    one_event_per_request=False,
    add_metadata=add_metadata,
    batch_items=json_array(top_level("event")),
)
