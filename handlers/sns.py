"""Amazon SNS message signatures: verify what SNS POSTs to an HTTP(S) subscription.

SNS signs a canonical string built from the message's own fields ("Key\\nValue\\n" for a
fixed list of keys) with the private key of a certificate it publishes at
``SigningCertURL``: SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA (PKCS#1 v1.5).

Trust comes from the certificate, so it is only ever taken from an Amazon SNS URL
(``SIGNING_CERT_URL``, matched whole: https, ``sns.<region>.amazonaws.com[.cn]``, a
``.pem`` path, nothing else), either pinned in the source's ``sns_certificates`` (PEM text
or a path to a PEM file; a source that pins never fetches) or fetched through the
gateway's ``VerifyContext.fetch_certificate`` once every cheap check has passed. Parsed
certificates are cached by content. Nothing here does network I/O itself.

Raw message delivery must be off for the subscription: a raw SES event carries no
signature and is refused as ``AuthError("missing")``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from handlers._common import iso_to_utc, lenient
from handlers.base import (
    AuthError,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
    check_replay_window,
    constant_time_equals,
)

__all__ = [
    "CONFIRMATION_TYPES",
    "MESSAGE_TYPES",
    "SIGNING_CERT_URL",
    "SNS_HOST",
    "SUBSCRIBE_URL",
    "canonical_string",
    "signing_cert_host",
    "subscribe_url_host",
    "verify_sns_message",
]

#: an Amazon SNS endpoint: ``sns.<region>.amazonaws.com`` (``.amazonaws.com.cn`` in China).
#: The one host pattern: the gateway's certificate fetcher and confirmer use it too.
SNS_HOST = re.compile(r"sns\.[a-z]{2}(?:-[a-z]+){1,2}-[0-9]{1,2}\.amazonaws\.com(?:\.cn)?")
#: the only place a signing certificate may come from. Matched whole (``fullmatch``): no
#: userinfo, port, query, fragment, whitespace or trailing characters (not even a newline)
SIGNING_CERT_URL = re.compile(
    rf"https://(?P<host>{SNS_HOST.pattern})/SimpleNotificationService-[0-9a-f]{{1,64}}\.pem"
)
#: the only place a subscription may be confirmed at (the gateway GETs it on auto_confirm)
SUBSCRIBE_URL = re.compile(rf"https://(?P<host>{SNS_HOST.pattern})/\?[!-~]+")

CONFIRMATION_TYPES = ("SubscriptionConfirmation", "UnsubscribeConfirmation")
MESSAGE_TYPES = ("Notification", *CONFIRMATION_TYPES)

_NOTIFICATION_KEYS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_CONFIRMATION_KEYS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
#: the headers SNS adds, and the body field each must agree with
_HEADER_FIELDS = (
    ("x-amz-sns-message-type", "Type"),
    ("x-amz-sns-message-id", "MessageId"),
    ("x-amz-sns-topic-arn", "TopicArn"),
)
_CACHE_LIMIT = 256


@dataclass(frozen=True, slots=True)
class _Certificate:
    public_key: rsa.RSAPublicKey
    not_before: datetime
    not_after: datetime


_parsed: dict[bytes, _Certificate | None] = {}
_pinned_files: dict[str, bytes] = {}


def signing_cert_host(url: str) -> str | None:
    """The SNS host of a well-formed SigningCertURL; None for anything else."""
    matched = SIGNING_CERT_URL.fullmatch(url)
    return matched.group("host") if matched else None


def subscribe_url_host(url: str) -> str | None:
    """The SNS host of a well-formed SubscribeURL (printable ASCII, no fragment); None
    for anything else."""
    matched = SUBSCRIBE_URL.fullmatch(url)
    return matched.group("host") if matched and "#" not in url else None


def canonical_string(envelope: Mapping[str, Any]) -> bytes:
    """The bytes SNS signs; ``KeyError``/``TypeError`` if a signed field is absent."""
    keys = _NOTIFICATION_KEYS if envelope["Type"] == "Notification" else _CONFIRMATION_KEYS
    parts: list[str] = []
    for key in keys:
        value = envelope.get(key)
        if key == "Subject" and value is None:
            continue
        if not isinstance(value, str):
            raise TypeError(key)
        parts.append(f"{key}\n{value}\n")
    return "".join(parts).encode("utf-8")


def _envelope(body: bytes) -> dict[str, Any]:
    try:
        envelope = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, ValueError):
        raise AuthError("missing", "body is not an SNS message") from None
    if not isinstance(envelope, dict):
        raise AuthError("missing", "body is not an SNS message")
    return envelope


def _signature_fields(envelope: Mapping[str, Any]) -> tuple[bytes, str, str]:
    signature = envelope.get("Signature")
    version = envelope.get("SignatureVersion")
    cert_url = envelope.get("SigningCertURL")
    if not signature or not version or not cert_url:
        raise AuthError("missing", "SNS signature fields are missing")
    if not isinstance(signature, str) or not isinstance(cert_url, str):
        raise AuthError("invalid", "SNS signature fields are malformed")
    if version not in _HASHES:
        raise AuthError("invalid", "unsupported SignatureVersion")
    if signing_cert_host(cert_url) is None:
        raise AuthError("untrusted", "SigningCertURL is not an Amazon SNS certificate URL")
    try:
        decoded = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise AuthError("invalid", "Signature is not base64") from None
    return decoded, str(version), cert_url


def _check_envelope(
    request: WebhookRequest, source: SourceSpec, envelope: Mapping[str, Any]
) -> None:
    kind = envelope.get("Type")
    if kind not in MESSAGE_TYPES:
        raise AuthError("invalid", "not an SNS message type")
    topic_arn = envelope.get("TopicArn")
    if not isinstance(topic_arn, str) or not any(
        constant_time_equals(topic_arn, allowed) for allowed in source.topic_arns
    ):
        raise AuthError("untrusted", "TopicArn is not one of the source's topic_arns")
    for header, key in _HEADER_FIELDS:
        given = request.headers.get(header)
        if given is not None and given != envelope.get(key):
            raise AuthError("invalid", f"{header} does not match the body")
    if kind in CONFIRMATION_TYPES:
        subscribe_url = envelope.get("SubscribeURL")
        if not isinstance(subscribe_url, str) or subscribe_url_host(subscribe_url) is None:
            raise AuthError("untrusted", "SubscribeURL is not an Amazon SNS URL")


def _read_pinned_file(path: str) -> bytes:
    cached = _pinned_files.get(path)
    if cached is None:
        try:
            cached = Path(path).read_bytes()
        except OSError:
            raise AuthError("untrusted", "pinned SNS certificate file is unreadable") from None
        if len(_pinned_files) >= _CACHE_LIMIT:
            _pinned_files.clear()
        _pinned_files[path] = cached
    return cached


async def _certificate_pem(cert_url: str, source: SourceSpec, context: VerifyContext) -> bytes:
    if source.sns_certificates:
        # a source that pins certificates trusts only those: it never fetches anything
        pinned = source.sns_certificates.get(cert_url)
        if pinned is None:
            raise AuthError("untrusted", "SigningCertURL is not one of the pinned certificates")
        if "-----BEGIN" in pinned:
            return pinned.encode("utf-8")
        return _read_pinned_file(pinned)
    if context.fetch_certificate is None:
        raise AuthError("untrusted", "certificate not pinned and fetching is not available")
    pem = await context.fetch_certificate(cert_url)
    if not pem:
        raise AuthError("untrusted", "certificate could not be obtained")
    return pem


def _parse_certificate(pem: bytes) -> _Certificate:
    digest = hashlib.sha256(pem).digest()
    if digest in _parsed:
        cached = _parsed[digest]
    else:
        cached = None
        try:
            certificate = x509.load_pem_x509_certificate(pem)
            public_key = certificate.public_key()
            if isinstance(public_key, rsa.RSAPublicKey):
                cached = _Certificate(
                    public_key=public_key,
                    not_before=certificate.not_valid_before_utc,
                    not_after=certificate.not_valid_after_utc,
                )
        except ValueError:
            cached = None
        if len(_parsed) >= _CACHE_LIMIT:
            _parsed.clear()
        _parsed[digest] = cached
    if cached is None:
        raise AuthError("untrusted", "SNS signing certificate is not a valid RSA certificate")
    return cached


async def verify_sns_message(
    request: WebhookRequest, source: SourceSpec, context: VerifyContext
) -> None:
    """Raise ``AuthError`` unless the body is an SNS message signed by Amazon SNS for one
    of the source's topics, within its replay window.

    ``context.fetch_certificate`` errors (network, breaker) propagate unchanged: they are
    the gateway's to map (503), not an authentication verdict.
    """
    envelope = _envelope(request.body)
    signature, version, cert_url = _signature_fields(envelope)
    _check_envelope(request, source, envelope)
    signed_at = lenient(iso_to_utc, envelope.get("Timestamp"))
    if signed_at is None:
        raise AuthError("invalid", "Timestamp is missing or malformed")
    check_replay_window(signed_at, context.now, source.replay_window_seconds)
    try:
        message = canonical_string(envelope)
    except (KeyError, TypeError):
        raise AuthError("invalid", "a signed field is missing or not a string") from None
    certificate = _parse_certificate(await _certificate_pem(cert_url, source, context))
    if not certificate.not_before <= context.now <= certificate.not_after:
        raise AuthError("untrusted", "SNS signing certificate is outside its validity period")
    try:
        certificate.public_key.verify(signature, message, padding.PKCS1v15(), _HASHES[version]())
    except InvalidSignature:
        raise AuthError("invalid") from None
