"""Standard Webhooks signatures (https://www.standardwebhooks.com/) for sink deliveries.

Each delivery carries ``webhook-id`` (stable across retries and replays of the same event to
the same sink, so consumers can dedupe), ``webhook-timestamp`` (integer seconds, fresh on
every attempt) and ``webhook-signature``: ``v1,`` + base64(HMAC-SHA256(key,
"{id}.{timestamp}.{body}")), where ``key`` is the base64 part of the ``whsec_...`` secret.
Any off-the-shelf Standard Webhooks library verifies it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

__all__ = ["SECRET_PREFIX", "WebhookSigner", "decode_secret", "webhook_id"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret


def decode_secret(secret: str) -> bytes:
    """The signing key of a ``whsec_<base64>`` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with '{SECRET_PREFIX}' followed by base64")
    encoded = secret[len(SECRET_PREFIX) :].strip()
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after '{SECRET_PREFIX}' is not valid base64") from None
    if len(key) < 16:
        raise ValueError("the key must be at least 16 bytes (24 to 64 recommended)")
    return key


def webhook_id(sink: str, dedup_key: str) -> str:
    """The message id of one event for one sink: the same on every retry and replay."""
    digest = hashlib.sha256(f"{sink}\0{dedup_key}".encode()).digest()
    return "msg_" + base64.b32encode(digest[:20]).decode("ascii").lower()


class WebhookSigner:
    """Signs bodies with one sink's secret. The key never leaves this object."""

    __slots__ = ("_key",)

    def __init__(self, secret: str) -> None:
        self._key = decode_secret(secret)

    def __repr__(self) -> str:
        return "WebhookSigner(<secret>)"

    def signature(self, message_id: str, timestamp: int, body: bytes) -> str:
        signed = f"{message_id}.{timestamp}.".encode() + body
        mac = hmac.new(self._key, signed, hashlib.sha256).digest()
        return "v1," + base64.b64encode(mac).decode("ascii")

    def headers(self, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers for one attempt."""
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": self.signature(message_id, timestamp, body),
        }
