"""Standard Webhooks signing: the reference library verifies our signatures; ids are stable
per (sink, event); malformed secrets are refused."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateway.delivery.signing import WebhookSigner, webhook_id
from gateway.sink_secrets import decode_secret

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_reference_library_verifies_our_signature() -> None:
    """Headers from ``WebhookSigner`` pass ``standardwebhooks.Webhook.verify``."""
    body = b'{"type":"email.bounced","data":{"n":1}}'
    now = int(datetime.now(UTC).timestamp())
    headers = WebhookSigner(SECRET).headers("msg_abc", now, body)
    assert Webhook(SECRET).verify(body, headers) == {"type": "email.bounced", "data": {"n": 1}}
    assert headers["webhook-signature"].startswith("v1,")


def test_signature_matches_the_reference_implementation_exactly() -> None:
    """Same id, timestamp and body: byte-identical to the library's own ``sign``."""
    body = '{"x":"ü"}'
    stamp = datetime(2024, 5, 1, tzinfo=UTC)
    ours = WebhookSigner(SECRET).signature("msg_1", int(stamp.timestamp()), body.encode())
    assert ours == Webhook(SECRET).sign("msg_1", stamp, body)


def test_other_secret_or_other_body_does_not_verify() -> None:
    """A different secret or a modified body fails verification."""
    body = b"{}"
    now = int(datetime.now(UTC).timestamp())
    headers = WebhookSigner(SECRET).headers("msg_1", now, body)
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b"{ }", headers)


def test_webhook_id_is_stable_per_sink_and_event() -> None:
    """The same (sink, event) always gets the same id; other sinks or events do not."""
    first = webhook_id("crm", "sendgrid:abc")
    assert first == webhook_id("crm", "sendgrid:abc")
    assert first.startswith("msg_")
    assert first != webhook_id("crm", "sendgrid:abd")
    assert first != webhook_id("warehouse", "sendgrid:abc")


@pytest.mark.parametrize(
    "secret",
    [
        "plain-secret",
        "whsec_",
        "whsec_!!!notbase64",
        "whsec_" + base64.b64encode(b"short").decode(),
    ],
)
def test_malformed_secrets_are_refused(secret: str) -> None:
    """Secrets must be ``whsec_`` + base64 of at least 16 bytes."""
    with pytest.raises(ValueError):
        decode_secret(secret)


def test_unpadded_base64_secrets_are_accepted() -> None:
    """Like the reference library, missing base64 padding is tolerated."""
    key = bytes(range(20))
    unpadded = "whsec_" + base64.b64encode(key).decode().rstrip("=")
    assert decode_secret(unpadded) == key


def test_signer_repr_hides_the_secret() -> None:
    """Printing a signer (logs, tracebacks) never shows the secret."""
    assert "whsec" not in repr(WebhookSigner(SECRET))
