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

``message_id`` is the ``X-Message-Id`` the send API returned (see ``message_id_of``):
``sg_message_id`` up to its first host segment, else the local part of ``smtp-id``, never
a SendGrid host name (some dropped events carry one where the id should be). Custom args
are the top-level keys SendGrid does not define; they become ``metadata``. ``category``
(string or list) becomes ``tags``. Time: the event's ``timestamp``, else the signed
timestamp header (when SendGrid sent the batch), else the receipt time.

SendGrid Inbound Parse (a received email, ``multipart/form-data``, unsigned) posted to the
event URL by mistake is recognised by its own fields (``envelope``, a JSON object with
``to`` and ``from``, plus ``headers`` or, in raw mode, ``email``) and acknowledged as a
``ControlMessage`` (``inbound_message``): 200, nothing stored or acted on, so SendGrid stops
retrying it. Any other multipart body is refused (``ContentTypeError``, 415).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from handlers._batch import ItemNormalizer, normalize_batch, normalize_item
from handlers._common import (
    check_json_depth,
    decode_embedded_json,
    decode_json,
    epoch_to_utc,
    event_time,
    expect_list,
    expect_object,
    lenient,
    opt_bool,
    opt_str,
    opt_time,
    req_str,
    smtp_status_from_text,
    tags_from,
)
from handlers._forms import form_fields
from handlers.addresses import canonical_address
from handlers.base import (
    Adapter,
    AuthError,
    ContentTypeError,
    ControlKind,
    ParseResult,
    PayloadError,
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
    TimeSource,
    content_dedup_key,
    id_dedup_key,
)

__all__ = [
    "ADAPTER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SendGridAdapter",
    "load_verification_key",
]

_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
#: Inbound Parse's content type (a received email); the Event Webhook's is JSON. Its fields:
#: https://www.twilio.com/docs/sendgrid/for-developers/parsing-email/setting-up-the-inbound-parse-webhook
INBOUND_PARSE_TYPE = "multipart/form-data"

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
    #: multipart only to recognise Inbound Parse pointed at the event URL (see parse)
    content_types: ClassVar[tuple[str, ...]] = ("application/json", INBOUND_PARSE_TYPE)
    signs_requests: ClassVar[bool] = True
    required_fields: ClassVar[tuple[str, ...]] = ("signing_key",)

    def check_source(self, source: SourceSpec) -> None:
        if source.signing_key is not None:
            load_verification_key(source.signing_key)

    async def verify(
        self, request: WebhookRequest, source: SourceSpec, context: VerifyContext
    ) -> None:
        self.verify_transport_auth(request, source)
        if request.content_type == INBOUND_PARSE_TYPE:
            # Inbound Parse is never signed: nothing in it is stored or acted on (parse)
            inbound_parse_mode(request)
            return
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
            key.verify(signature, timestamp.encode() + request.body, _ECDSA_SHA256)
        except (InvalidSignature, ValueError):
            raise AuthError("invalid") from None
        check_replay_window(signed_at, context.now, source.replay_window_seconds)

    def parse(
        self, request: WebhookRequest, source: SourceSpec, received_at: datetime
    ) -> ParseResult:
        if request.content_type == INBOUND_PARSE_TYPE:
            mode = inbound_parse_mode(request)
            return ParseResult.non_tracking(ControlKind.INBOUND_MESSAGE, mode=mode)
        check_json_depth(request.body)
        pairs = _well_formed(request.body)
        if pairs is None:
            # the careful path: item by item, a malformed one rejected with the bad field named
            items = expect_list(decode_json(request.body), "body")
            return normalize_batch(items, _item_normalizer(source.name, received_at, request))
        name = source.name
        undated = _undated_time(request, received_at)
        return ParseResult(
            events=[_event(fields, raw, name, received_at, undated) for fields, raw in pairs]
        )

    def parse_item(self, item: Any, source: SourceSpec, received_at: datetime) -> list[EmailEvent]:
        return normalize_item(item, _item_normalizer(source.name, received_at))


def inbound_parse_mode(request: WebhookRequest) -> str:
    """``parsed`` or ``raw`` for a SendGrid Inbound Parse post (a received email): its
    ``envelope`` field is a JSON object with ``to`` and ``from``, and it has ``headers``
    (parsed mode) or ``email`` (raw mode). Any other multipart body is a ``ContentTypeError``:
    SendGrid posts events as JSON."""
    refused = ContentTypeError(
        "sendgrid webhooks are sent as application/json "
        "(multipart/form-data only as an Inbound Parse post)"
    )
    try:
        fields = form_fields(request)
    except PayloadError:
        raise refused from None
    envelope = decode_embedded_json(fields.get("envelope", ""))
    if not (isinstance(envelope, dict) and "to" in envelope and "from" in envelope):
        raise refused
    if "email" in fields:
        return "raw"
    if "headers" in fields:
        return "parsed"
    raise refused


def _item_normalizer(
    source: str, received_at: datetime, request: WebhookRequest | None = None
) -> ItemNormalizer:
    """The careful path for one batch item at ``path``: its event, or a PayloadError. An
    item replayed alone (``parse_item``) has no request, so no envelope time."""
    undated = _undated_time(request, received_at)

    def normalize(item: Any, path: str) -> list[EmailEvent]:
        raw = expect_object(item, path)
        return [_event(_checked_fields(raw, path), raw, source, received_at, undated)]

    return normalize


#: a string that is not empty: msgspec checks it in C, so an empty string, which the shared
#: policy reads as absent (``handlers._common.opt_str``), sends the body the careful way
_Text = Annotated[str, msgspec.Meta(min_length=1)]


class _Fields(msgspec.Struct, gc=False):
    """The SendGrid fields Hookline reads, typed as a well-formed event has them."""

    email: _Text
    event: _Text
    timestamp: int | float | None = None
    sg_event_id: _Text | None = None
    # only ever read through message_id_of, to which empty and absent are the same
    sg_message_id: str | None = None
    smtp_id: str | None = msgspec.field(default=None, name="smtp-id")
    response: _Text | None = None
    reason: _Text | None = None
    status: _Text | None = None
    type: _Text | None = None
    bounce_classification: _Text | None = None
    url: _Text | None = None
    useragent: _Text | None = None
    ip: _Text | None = None
    marketing_campaign_name: _Text | None = None
    marketing_campaign_id: _Text | int | None = None
    singlesend_name: _Text | None = None
    sg_machine_open: bool | None = None
    category: str | list[str] | None = None


_decode_items = msgspec.json.Decoder(list[dict[str, Any]]).decode
_MAX_EPOCH_SECONDS = 253402300799.0


def _well_formed(body: bytes) -> list[tuple[_Fields, dict[str, Any]]] | None:
    """The fast path (on a body already checked for depth): one JSON parse, then the fields
    typed by msgspec in C (``convert`` from the decoded dicts). None when anything is off
    (a wrong type, an empty string, a time out of range, a numeric id): the careful
    path then parses the body again, item by item, and names the field."""
    try:
        items = _decode_items(body)
        fields = msgspec.convert(items, list[_Fields])
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # ValidationError is a DecodeError; RecursionError: unbalanced brackets (not JSON)
        return None
    for f in fields:
        if f.timestamp is not None and not 0 <= f.timestamp <= _MAX_EPOCH_SECONDS:
            return None
        if isinstance(f.category, list) and not all(f.category):
            f.category = [tag for tag in f.category if tag]
    return list(zip(fields, items, strict=True))


def _checked_fields(raw: dict[str, Any], path: str) -> _Fields:
    """The careful path, by the shared policy (``handlers._common``): ``event`` and
    ``email`` required, a present ``timestamp`` must parse, every other field of the wrong
    type reads as absent (numbers accepted as ids, ``0``/``1``/``"true"`` as booleans)."""
    # a present timestamp must parse; the fast path's float then, so both paths agree
    dated = opt_time(raw, "timestamp", path) is not None
    return _Fields(
        event=req_str(raw, "event", path),
        email=req_str(raw, "email", path),
        timestamp=float(raw["timestamp"]) if dated else None,
        sg_event_id=opt_str(raw, "sg_event_id"),
        sg_message_id=opt_str(raw, "sg_message_id"),
        smtp_id=opt_str(raw, "smtp-id"),
        response=opt_str(raw, "response"),
        reason=opt_str(raw, "reason"),
        status=opt_str(raw, "status"),
        type=opt_str(raw, "type"),
        bounce_classification=opt_str(raw, "bounce_classification"),
        url=opt_str(raw, "url"),
        useragent=opt_str(raw, "useragent"),
        ip=opt_str(raw, "ip"),
        marketing_campaign_name=opt_str(raw, "marketing_campaign_name"),
        marketing_campaign_id=opt_str(raw, "marketing_campaign_id"),
        singlesend_name=opt_str(raw, "singlesend_name"),
        sg_machine_open=opt_bool(raw, "sg_machine_open"),
        category=list(tags_from(raw.get("category"))),
    )


#: the first segment of a SendGrid host name (``filter0093p1las1``, ``filterdrecv-...``,
#: ``recvd-...``, ``ismtpd0001p1lon1``, ``geopod-...``): shared by unrelated messages
_HOST_PREFIXES = ("filter", "recvd", "ismtpd", "geopod")
_HOST_SEGMENT = re.compile(r"\.(?:filter|recvd|ismtpd|geopod)")


def message_id_of(sg_message_id: str | None, smtp_id: str | None) -> str | None:
    """The ``X-Message-Id`` the send API returned, in this order:

    1. ``sg_message_id`` up to its first host segment (``W86E...Q.filterdrecv-....0`` ->
       ``W86E...Q``; the older ``14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0`` ->
       ``14c5d75ce93.dfd.64b469``), unless that is empty or itself a host name: some
       dropped events carry ``filter0093p1las1.<n>.<hex>.0``, shared by unrelated messages;
    2. the local part of ``smtp-id`` (``<14c5d75ce93.dfd.64b469@ismtpd-555>``), likewise;
    3. none: a message id that merges unrelated timelines is worse than none.
    """
    if sg_message_id and not sg_message_id.startswith(_HOST_PREFIXES):
        head, _, rest = sg_message_id.partition(".")
        if head and rest.startswith(_HOST_PREFIXES):
            return head  # today's shape, by far the most common: no regex needed
        host = _HOST_SEGMENT.search(sg_message_id)
        # no host segment (an undocumented shape): up to the first dot, as before
        found = sg_message_id[: host.start()] if host else sg_message_id.split(".", 1)[0]
        if found:
            return found
    if smtp_id:
        local = smtp_id.strip().lstrip("<").rsplit("@", 1)[0].strip()
        if local and "@" in smtp_id and not local.startswith(_HOST_PREFIXES):
            return local
    return None


# enum members as plain module constants: on Python 3.11 ``EventType.BOUNCED`` is an
# attribute lookup through the enum machinery, several of which per event add up
_UNKNOWN, _BOUNCED, _DROPPED, _CLICKED = (
    EventType.UNKNOWN,
    EventType.BOUNCED,
    EventType.DROPPED,
    EventType.CLICKED,
)
_UNDETERMINED = BounceClass.UNDETERMINED
_EVENT_TIME = TimeSource.EVENT


@functools.lru_cache(maxsize=4096)
def _utc(epoch: float) -> datetime:
    """Events of one batch mostly share a handful of timestamps (whole seconds)."""
    return datetime.fromtimestamp(epoch, tz=UTC)


def _undated_time(
    request: WebhookRequest | None, received_at: datetime
) -> tuple[datetime, TimeSource]:
    """The time of an event without its own, once per request: when SendGrid signed the
    request (the signature timestamp header), else the receipt time."""
    header = request.headers.get(TIMESTAMP_HEADER) if request is not None else None
    return event_time(received_at, None, lenient(epoch_to_utc, header))


def _event(
    f: _Fields,
    raw: dict[str, Any],
    source: str,
    received_at: datetime,
    undated: tuple[datetime, TimeSource] | None = None,
) -> EmailEvent:
    """``undated``: the time of an event without its own, and its source (``_undated_time``;
    None: the receipt time)."""
    event_type = EVENT_TYPES.get(f.event, _UNKNOWN)
    bounce_class: BounceClass | None = None
    if event_type is _BOUNCED:
        bounce_class = BOUNCE_CLASSES.get(f.type or "", _UNDETERMINED)
        reason = f.bounce_classification or f.type
        diagnostic = f.reason or f.response
    elif event_type is _DROPPED:
        reason = f.reason or f.type
        diagnostic = f.response
    else:
        reason = f.reason
        diagnostic = f.response
    campaign_id = f.marketing_campaign_id
    category = f.category
    if f.timestamp is None:
        occurred_at, time_source = undated or (received_at, TimeSource.RECEIVED)
    else:
        occurred_at, time_source = _utc(f.timestamp), _EVENT_TIME
    return EmailEvent(
        provider="sendgrid",
        source=source,
        event_type=event_type,
        occurred_at=occurred_at,
        received_at=received_at,
        recipient=canonical_address(f.email),
        message_id=message_id_of(f.sg_message_id, f.smtp_id),
        provider_event_id=f.sg_event_id,
        dedup_key=(
            id_dedup_key("sendgrid", f.sg_event_id)
            if f.sg_event_id
            else content_dedup_key("sendgrid", raw)
        ),
        esp_event=f.event,
        bounce_class=bounce_class,
        reason=reason,
        smtp_status=f.status or smtp_status_from_text(diagnostic),
        diagnostic=diagnostic,
        url=f.url if event_type is _CLICKED else None,
        user_agent=f.useragent,
        ip=f.ip,
        machine_open=bool(f.sg_machine_open),
        campaign=(
            f.marketing_campaign_name
            or (str(campaign_id) if campaign_id is not None else None)
            or f.singlesend_name
        ),
        tags=() if not category else (category,) if isinstance(category, str) else tuple(category),
        metadata={key: value for key, value in raw.items() if key not in STANDARD_KEYS},
        raw=raw,
        time_source=time_source,
    )


ADAPTER = SendGridAdapter()
