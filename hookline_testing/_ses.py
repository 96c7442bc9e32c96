"""Amazon SES samples: SES events in SNS envelopes, signed the way SNS signs them.

``make_test_source`` creates a self-signed RSA certificate and pins it for a test
``SigningCertURL``; ``example_body`` builds an SNS envelope around SES events (unsigned);
``signed_request`` signs that envelope the way SNS does (the signature lives in the body).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from handlers.base import SourceSpec, WebhookRequest
from handlers.sns import _HASHES, CONFIRMATION_TYPES, canonical_string
from hookline_testing._samples import Samples

__all__ = [
    "SES_EVENT_TYPES",
    "TEST_CERT_URL",
    "TEST_TOPIC_ARN",
    "SnsSigningMaterial",
    "example_body",
    "make_test_certificate",
    "make_test_source",
    "ses_event",
    "sign_envelope",
    "signed_request",
]

TEST_TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:hookline-ses-events"
TEST_CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123abcd.pem"
#: every event publishing ``eventType`` SES documents
SES_EVENT_TYPES = (
    "Send",
    "Reject",
    "Bounce",
    "Complaint",
    "Delivery",
    "Open",
    "Click",
    "Rendering Failure",
    "DeliveryDelay",
    "Subscription",
)
_NAMESPACE = uuid.UUID("6d1f3f0e-3b0a-4d38-9a57-2f1b8c1f5e11")


@dataclass(frozen=True, slots=True)
class SnsSigningMaterial:
    """What signs test SNS messages: the key, its certificate and where it "lives"."""

    private_key: rsa.RSAPrivateKey
    certificate_pem: str
    cert_url: str = TEST_CERT_URL
    signature_version: str = "1"


def sign_envelope(
    envelope: Mapping[str, Any],
    private_key: rsa.RSAPrivateKey,
    *,
    signature_version: str = "1",
) -> dict[str, Any]:
    """A copy of ``envelope`` signed the way SNS signs it."""
    signed = dict(envelope)
    signed["SignatureVersion"] = signature_version
    signature = private_key.sign(
        canonical_string(signed), padding.PKCS1v15(), _HASHES[signature_version]()
    )
    signed["Signature"] = base64.b64encode(signature).decode("ascii")
    return signed


def make_test_certificate(
    not_before: datetime | None = None, not_after: datetime | None = None
) -> tuple[rsa.RSAPrivateKey, str]:
    """A fresh RSA key and a self-signed certificate for it (PEM). Valid by default from
    2000 to ten years from now, so that recorded fixtures verify whatever their date."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or datetime(2000, 1, 1, tzinfo=UTC))
        .not_valid_after(not_after or datetime.now(UTC) + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def make_test_source(name: str = "test", **overrides: Any) -> tuple[SourceSpec, Any]:
    """A source pinning a fresh self-signed certificate, and the ``SnsSigningMaterial``."""
    key, pem = make_test_certificate()
    material = SnsSigningMaterial(private_key=key, certificate_pem=pem)
    source = SourceSpec(
        provider="ses",
        name=name,
        topic_arns=(TEST_TOPIC_ARN,),
        sns_certificates={TEST_CERT_URL: pem},
    )
    return replace(source, **overrides), material


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


def _mail(message_id: str, recipients: list[str], sent_at: datetime, seed: int) -> dict[str, Any]:
    return {
        "timestamp": _iso(sent_at),
        "source": "Sender Name <sender@example.com>",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
        "sendingAccountId": "123456789012",
        "messageId": message_id,
        "destination": recipients,
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": "Sender Name <sender@example.com>"},
            {"name": "To", "value": ", ".join(recipients)},
            {"name": "Subject", "value": "Message sent from Amazon SES"},
        ],
        "commonHeaders": {
            "from": ["Sender Name <sender@example.com>"],
            "to": recipients,
            "messageId": message_id,
            "subject": "Message sent from Amazon SES",
        },
        "tags": {
            "ses:configuration-set": ["ConfigSet"],
            "ses:source-ip": ["192.0.2.0"],
            "ses:from-domain": ["example.com"],
            "ses:caller-identity": ["ses_user"],
            "campaign": [f"campaign-{seed}"],
        },
    }


def ses_event(
    kind: str, *, message_id: str, recipients: list[str], at: datetime, seed: int = 0
) -> dict[str, Any]:
    """One SES event publishing record of ``kind`` (an ``eventType``), as SES documents it."""
    ts = _iso(at)
    sent = _iso(at - timedelta(seconds=2))
    record: dict[str, Any] = {
        "eventType": kind,
        "mail": _mail(message_id, recipients, at - timedelta(seconds=2), seed),
    }
    if kind == "Bounce":
        record["bounce"] = {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": r,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
                for r in recipients
            ],
            "timestamp": ts,
            "feedbackId": f"0100015{seed:09x}-bounce-000000",
            "reportingMTA": "dsn; mta.example.com",
        }
    elif kind == "Complaint":
        record["complaint"] = {
            "complainedRecipients": [{"emailAddress": r} for r in recipients],
            "timestamp": ts,
            "feedbackId": f"0100015{seed:09x}-complaint-000000",
            "userAgent": "ExampleCorp Feedback Loop (V0.01)",
            "complaintFeedbackType": "abuse",
            "arrivalDate": sent,
        }
    elif kind == "Delivery":
        record["delivery"] = {
            "timestamp": ts,
            "processingTimeMillis": 546,
            "recipients": recipients,
            "smtpResponse": "250 2.6.0 Message received",
            "reportingMTA": "mta.example.com",
        }
    elif kind == "Send":
        record["send"] = {}
    elif kind == "Reject":
        record["reject"] = {"reason": "Bad content"}
    elif kind == "Open":
        record["open"] = {
            "ipAddress": "192.0.2.1",
            "timestamp": ts,
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_3 like Mac OS X)",
        }
    elif kind == "Click":
        record["click"] = {
            "ipAddress": "192.0.2.1",
            "link": "https://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html",
            "linkTags": {"samplekey0": ["samplevalue0"]},
            "timestamp": ts,
            "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
        }
    elif kind == "Rendering Failure":
        record["failure"] = {
            "errorMessage": "Attribute 'attributeName' is not present in the rendering data.",
            "templateName": "MyTemplate",
        }
    elif kind == "DeliveryDelay":
        record["deliveryDelay"] = {
            "timestamp": ts,
            "delayType": "TransientCommunicationFailure",
            "expirationTime": _iso(at + timedelta(hours=12)),
            "delayedRecipients": [
                {
                    "emailAddress": r,
                    "status": "4.4.1",
                    "diagnosticCode": "smtp; 421 4.4.1 Unable to connect to remote host",
                }
                for r in recipients
            ],
        }
    elif kind == "Subscription":
        record["subscription"] = {
            "contactList": "ContactListName",
            "timestamp": ts,
            "source": "UnsubscribeHeader",
            "newTopicPreferences": {
                "unsubscribeAll": True,
                "topicSubscriptionStatus": [
                    {"topicName": "ExampleTopicName", "subscriptionStatus": "OptOut"}
                ],
            },
            "oldTopicPreferences": {
                "unsubscribeAll": False,
                "topicSubscriptionStatus": [
                    {"topicName": "ExampleTopicName", "subscriptionStatus": "OptIn"}
                ],
            },
        }
    else:
        raise ValueError(f"unknown SES eventType {kind!r} (known: {', '.join(SES_EVENT_TYPES)})")
    return record


def example_body(
    count: int = 1, *, seed: int = 0, event: str | None = None, now: datetime | None = None
) -> bytes:
    """An (unsigned) SNS envelope around one SES event naming ``count`` recipients, or an
    SNS ``SubscriptionConfirmation`` / ``UnsubscribeConfirmation`` when ``event`` says so.

    ``now`` (default: the current time) is the SNS ``Timestamp``, which the replay window
    checks; the SNS ``MessageId`` (and so the dedup keys) depends only on ``seed``.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    kind = event or "Delivery"
    at = now or datetime.now(UTC)
    sns_id = str(uuid.uuid5(_NAMESPACE, f"sns:{seed}"))
    envelope: dict[str, Any] = {"Type": "Notification", "MessageId": sns_id}
    if kind in CONFIRMATION_TYPES:
        token = uuid.uuid5(_NAMESPACE, f"token:{seed}").hex * 4
        envelope.update(
            Type=kind,
            Token=token,
            TopicArn=TEST_TOPIC_ARN,
            Message=(
                f"You have chosen to subscribe to the topic {TEST_TOPIC_ARN}.\n"
                "To confirm the subscription, visit the SubscribeURL included in this message."
            ),
            SubscribeURL=(
                "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
                f"&TopicArn={TEST_TOPIC_ARN}&Token={token}"
            ),
        )
    else:
        message_id = f"0100018{seed:09x}-{uuid.uuid5(_NAMESPACE, f'mail:{seed}')}-000000"
        recipients = [f"recipient{i}.{seed}@example.com" for i in range(count)]
        record = ses_event(kind, message_id=message_id, recipients=recipients, at=at, seed=seed)
        envelope.update(TopicArn=TEST_TOPIC_ARN, Message=json.dumps(record))
    envelope.update(
        Timestamp=_iso(at),
        SignatureVersion="1",
        Signature="",
        SigningCertURL=TEST_CERT_URL,
    )
    if envelope["Type"] == "Notification":
        envelope["UnsubscribeURL"] = (
            "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
            f"{TEST_TOPIC_ARN}:{uuid.uuid5(_NAMESPACE, 'subscription')}"
        )
    return json.dumps(envelope, indent=2).encode("utf-8")


def signed_request(
    source: SourceSpec,
    material: Any,
    body: bytes,
    *,
    now: datetime,
    url: str | None = None,
) -> WebhookRequest:
    """The POST SNS would send: ``body`` (an SNS envelope) re-signed with ``material``.

    SNS signs the body's own ``Timestamp``, so ``now`` does not change it (build the body
    with ``example_body(now=...)`` to control it). ``source`` is not needed to sign SNS.
    """
    envelope = json.loads(body)
    if not isinstance(envelope, dict):
        raise ValueError("an SNS body is a JSON object")
    envelope["SigningCertURL"] = material.cert_url
    signed = sign_envelope(
        envelope, material.private_key, signature_version=material.signature_version
    )
    headers = {
        "content-type": "text/plain; charset=UTF-8",
        "user-agent": "Amazon Simple Notification Service Agent",
    }
    for header, key in (
        ("x-amz-sns-message-type", "Type"),
        ("x-amz-sns-message-id", "MessageId"),
        ("x-amz-sns-topic-arn", "TopicArn"),
    ):
        if isinstance(signed.get(key), str):
            headers[header] = signed[key]
    if signed.get("Type") == "Notification" and isinstance(signed.get("TopicArn"), str):
        headers["x-amz-sns-subscription-arn"] = (
            f"{signed['TopicArn']}:{uuid.uuid5(_NAMESPACE, 'subscription')}"
        )
    return WebhookRequest(
        method="POST",
        url=url or f"http://127.0.0.1:8000/webhooks/ses/{source.name}",
        headers=headers,
        body=json.dumps(signed, indent=2).encode("utf-8"),
    )


def add_metadata(body: bytes, key: str, value: str) -> bytes:
    """A tag of the SES ``mail`` (SES sends every tag as an array), inside the envelope."""
    envelope = json.loads(body)
    message = json.loads(envelope["Message"])
    message["mail"].setdefault("tags", {})[key] = [value]
    envelope["Message"] = json.dumps(message)
    return json.dumps(envelope, indent=2).encode("utf-8")


SAMPLES = Samples(
    provider="ses",
    traffic_share=20,
    make_source=make_test_source,
    example_body=example_body,
    signed_request=signed_request,
    events=SES_EVENT_TYPES,
    one_event_per_request=False,
    add_metadata=add_metadata,
)
