"""Standard Webhooks signatures (https://www.standardwebhooks.com/) for sink deliveries.

Each delivery carries ``webhook-id`` (stable across retries and replays of the same event to
the same sink, so consumers can dedupe), ``webhook-timestamp`` (integer seconds, fresh on
every attempt) and ``webhook-signature``: ``v1,`` + base64(HMAC-SHA256(key,
"{id}.{timestamp}.{body}")), where ``key`` is the base64 part of the ``whsec_...`` secret.
Any off-the-shelf Standard Webhooks library verifies it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from gateway.sink_secrets import decode_secret

__all__ = ["WebhookSigner", "webhook_id"]


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
