"""The adapter contract every ESP module implements, and the helpers they share.

An adapter turns ``(headers, raw body)`` into verified ``EmailEvent``s. It never touches the
network, a database or a web framework: everything stateful (nonce memory, certificate
fetching) is injected by the gateway, which keeps adapters pure and fast to test.
"""

from __future__ import annotations

import abc
import base64
import binascii
import enum
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from handlers.events import EmailEvent

__all__ = [
    "Adapter",
    "AuthError",
    "ContentTypeError",
    "ControlKind",
    "ControlMessage",
    "ParseResult",
    "PayloadError",
    "RejectedItem",
    "SourceSpec",
    "VerifyContext",
    "WebhookRequest",
    "check_basic_auth",
    "check_bearer_token",
    "check_replay_window",
    "constant_time_equals",
    "hmac_digest",
]


class AuthError(Exception):
    """The request is not authentic. ``reason`` is a bounded label, safe for metrics.

    Reasons: ``missing`` (no signature / credentials), ``invalid`` (does not verify),
    ``stale`` (outside the replay window), ``replayed`` (nonce reused with other content),
    ``untrusted`` (certificate / topic not allowed).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail


class PayloadError(Exception):
    """The body is not the provider's shape. ``field`` names what was wrong."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ContentTypeError(Exception):
    """The request's content type is not one the provider sends."""


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """What an adapter sees of an HTTP request. Header names are lower-case."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        value = self.headers.get("content-type", "")
        return value.split(";", 1)[0].strip().lower()


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """The per-source settings an adapter needs; secrets already resolved to values."""

    #: the ESP (``handlers/registry.py``); the webhook URL is /webhooks/{provider}/{name}
    provider: str
    #: the source's name: a URL segment, and the ``source`` label
    name: str
    #: the ESP's verification key or webhook secret (per provider: docs/configuration.md)
    signing_key: str | None = None
    #: ``user:password`` the ESP must send (HTTP Basic)
    basic_auth: str | None = None
    #: the token the ESP must send as ``Authorization: Bearer``
    bearer_token: str | None = None
    #: signed timestamps further than this from now are refused (stale)
    replay_window_seconds: int = 86400
    #: accept a provider that signs nothing without basic_auth or bearer_token
    allow_unauthenticated: bool = False
    #: ses: the SNS topic ARNs accepted
    topic_arns: tuple[str, ...] = ()
    #: ses: pinned SNS certificates, ``SigningCertURL`` to a PEM or a path
    sns_certificates: Mapping[str, str] = field(default_factory=dict)
    #: ses: confirm SNS subscriptions (GET their SubscribeURL)
    auto_confirm: bool = False
    #: mandrill: the exact webhook URL configured at Mandrill (what it signs)
    url: str | None = None


class ControlKind(enum.StrEnum):
    """What a non-tracking message at a tracking URL was (bounded: a metric label).

    None of them is a delivery event: the gateway acknowledges them (200, nothing stored as
    an event, nothing acted on), logs and counts them."""

    #: SNS asks to confirm a subscription (SES via SNS)
    SUBSCRIPTION_CONFIRMATION = "subscription_confirmation"
    #: SNS reports an unsubscribe
    UNSUBSCRIBE_CONFIRMATION = "unsubscribe_confirmation"
    #: SES's plain-text test message when event publishing to an SNS topic is set up
    TOPIC_VALIDATION = "topic_validation"
    #: an inbound-parse payload (a received email) posted to the tracking URL: the ESP's
    #: inbound route is pointed at the wrong URL
    INBOUND_MESSAGE = "inbound_message"
    #: an event about an inbound (received) message, not about one the sender sent, e.g.
    #: Postal failing to forward an incoming message to its HTTP endpoint
    INBOUND_EVENT = "inbound_event"


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """A non-event message an ESP sends (e.g. an SNS SubscriptionConfirmation).

    ``kind`` is a ``ControlKind`` value; ``detail`` is logged, so it never holds a secret or
    a full email address."""

    kind: str
    detail: Mapping[str, Any]
    confirm_url: str | None = None


@dataclass(frozen=True, slots=True)
class RejectedItem:
    """One item of a well-formed batch body that could not be normalized.

    The rest of the batch is still stored; the gateway quarantines this item (kept with its
    raw value and the error, replayable through ``Adapter.parse_item`` once fixed)."""

    #: position of the item in the batch body
    index: int
    #: the path that was wrong, e.g. ``[3].timestamp``; None when the item as a whole was
    field: str | None
    #: what was wrong, for people (never a secret; may be logged)
    reason: str
    #: the item as decoded from the body (a JSON value)
    raw: Any


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What a verified request yields.

    ``nonce``/``nonce_digest``: for schemes whose signature does not cover the whole body
    (Mailgun) the gateway remembers the nonce with a digest of the content: the same nonce
    with the same content is a redelivery, with other content a forgery.

    ``rejected``: items of a batch body that were malformed on their own (the body as a
    whole was well-formed); ``events`` holds the normalized events of all the other items.
    """

    events: list[EmailEvent]
    control: ControlMessage | None = None
    nonce: str | None = None
    nonce_digest: str | None = None
    rejected: list[RejectedItem] = field(default_factory=list)

    @classmethod
    def non_tracking(cls, kind: ControlKind, **detail: Any) -> ParseResult:
        """A message that is no tracking event: no events, one ``ControlMessage``."""
        return cls(events=[], control=ControlMessage(kind=kind.value, detail=detail))


CertificateLoader = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class VerifyContext:
    """What verification may use beyond the request: the clock and, for SNS, a certificate
    loader (the gateway's downstream HTTP client with timeout, breaker and cache)."""

    now: datetime
    fetch_certificate: CertificateLoader | None = None


class Adapter(abc.ABC):
    """Base class for ESP adapters: ``verify`` then ``parse``; both raise typed errors."""

    provider: ClassVar[str]
    content_types: ClassVar[tuple[str, ...]] = ("application/json",)
    #: providers that sign nothing require basic auth or a bearer token in the source
    signs_requests: ClassVar[bool] = True
    #: config fields this provider needs (checked at start-up), e.g. ("signing_key",)
    required_fields: ClassVar[tuple[str, ...]] = ()

    def check_source(self, source: SourceSpec) -> None:
        """Validate a source's credentials at start-up; ``ValueError`` names the problem.
        Default: nothing to check beyond ``required_fields``."""
        return

    def check_content_type(self, request: WebhookRequest) -> None:
        if request.content_type not in self.content_types:
            raise ContentTypeError(
                f"{self.provider} webhooks are sent as {' or '.join(self.content_types)}"
            )

    def verify_transport_auth(self, request: WebhookRequest, source: SourceSpec) -> None:
        """Basic auth or bearer token, when the source configures them (either one passes)."""
        failures: list[AuthError] = []
        if source.basic_auth is not None:
            try:
                check_basic_auth(request, source.basic_auth)
                return
            except AuthError as exc:
                failures.append(exc)
        if source.bearer_token is not None:
            try:
                check_bearer_token(request, source.bearer_token)
                return
            except AuthError as exc:
                failures.append(exc)
        if failures:
            invalid = [f for f in failures if f.reason == "invalid"]
            raise (invalid or failures)[0]

    async def verify(
        self, request: WebhookRequest, source: SourceSpec, context: VerifyContext
    ) -> None:
        """Raise ``AuthError`` unless the request is authentic. Default: transport auth.
        Where the credential travels inside the body (Mailgun, SNS), a body too malformed to
        carry one (e.g. JSON nested too deeply) may be a ``PayloadError`` instead (400)."""
        self.verify_transport_auth(request, source)

    @abc.abstractmethod
    def parse(
        self, request: WebhookRequest, source: SourceSpec, received_at: datetime
    ) -> ParseResult:
        """Decode and normalize a verified body. Raise ``PayloadError`` on a bad shape."""

    def parse_item(self, item: Any, source: SourceSpec, received_at: datetime) -> list[EmailEvent]:
        """Normalize one batch item as ``ParseResult.rejected`` holds it (``raw``), to replay
        a quarantined item once the cause is fixed. ``PayloadError`` if it is still invalid.
        Default: the provider sends no batches, so there are no items to replay."""
        raise PayloadError(f"{self.provider} sends no batch items to replay", None)


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare secrets without leaking where they differ."""
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def hmac_digest(key: bytes, message: bytes, algorithm: str = "sha256") -> bytes:
    return hmac.new(key, message, getattr(hashlib, algorithm)).digest()


def check_basic_auth(request: WebhookRequest, expected: str) -> None:
    header = request.headers.get("authorization")
    if not header:
        raise AuthError("missing", "basic auth required")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise AuthError("missing", "basic auth required")
    try:
        given = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise AuthError("invalid") from None
    if not constant_time_equals(given, expected.encode()):
        raise AuthError("invalid")


def check_bearer_token(request: WebhookRequest, expected: str) -> None:
    header = request.headers.get("authorization")
    if not header:
        raise AuthError("missing", "bearer token required")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        raise AuthError("missing", "bearer token required")
    if not constant_time_equals(value.strip(), expected):
        raise AuthError("invalid")


def check_replay_window(signed_at: datetime, now: datetime, window_seconds: int) -> None:
    """Reject a signature timestamp further than the window from now (either side)."""
    if abs((now - signed_at).total_seconds()) > window_seconds:
        raise AuthError("stale")


def parse_timestamp_header(value: str | None) -> datetime:
    """An integer epoch-seconds header as UTC; ``AuthError('missing'|'invalid')`` otherwise."""
    if value is None or value == "":
        raise AuthError("missing")
    try:
        return datetime.fromtimestamp(int(value.strip()), tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise AuthError("invalid") from None
