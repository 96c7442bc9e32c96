"""Amazon SES events delivered by Amazon SNS to an HTTP(S) subscription.

The body is an SNS message (``text/plain``, JSON inside) verified by ``handlers.sns``. A
``Notification`` carries one SES event in ``Message`` (a JSON string): either an event
publishing record (``eventType``, from a configuration set) or a classic identity
notification (``notificationType``). Subscription and unsubscribe confirmations become
``ControlMessage``s for the gateway.

One ``EmailEvent`` per affected recipient: bounces per ``bouncedRecipients``, complaints per
``complainedRecipients``, deliveries per ``delivery.recipients``, delays per
``delayedRecipients``, everything else per ``mail.destination``. Dedup key: the SNS
``MessageId`` with the recipient (SNS redelivers a message with the same id).

Time: the event's own timestamp (``bounce.timestamp``, ``open.timestamp``, ``mail.timestamp``
for Send ...), else the SNS envelope's ``Timestamp`` (when SNS published it), else receipt.
Metadata: the message tags, single-valued ones as scalars (see ``scalar_tags``).
SES's plain-text topic validation and its ``AmazonSnsSubscriptionSucceeded`` notice are
``ControlMessage``s (``topic_validation``), not events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from handlers._common import (
    decode_json,
    event_time,
    expect_list,
    expect_object,
    iso_to_utc,
    lenient,
    opt_bool,
    opt_list,
    opt_object,
    opt_str,
    opt_time,
    req_str,
    smtp_status_from_text,
)
from handlers.addresses import canonical_address
from handlers.base import (
    Adapter,
    ControlKind,
    ControlMessage,
    ParseResult,
    PayloadError,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import BounceClass, EmailEvent, EventType, id_dedup_key
from handlers.sns import CONFIRMATION_TYPES, verify_sns_message

__all__ = ["ADAPTER", "SesAdapter"]

_BOUNCE_CLASSES = {
    "Permanent": BounceClass.HARD,
    "Transient": BounceClass.SOFT,
    "Undetermined": BounceClass.UNDETERMINED,
}
#: event kinds whose recipients are every address the message was sent to
_PER_DESTINATION = {
    "Send": EventType.SENT,
    "Reject": EventType.DROPPED,
    "Rendering Failure": EventType.DROPPED,
    "RenderingFailure": EventType.DROPPED,
    "Open": EventType.OPENED,
    "Click": EventType.CLICKED,
    "Subscription": EventType.UNSUBSCRIBED,
}


@dataclass(slots=True)
class _Detail:
    """What one SES event says about one recipient, beyond the shared mail fields."""

    recipient: str | None
    event_type: EventType
    occurred_at: datetime | None = None
    bounce_class: BounceClass | None = None
    reason: str | None = None
    smtp_status: str | None = None
    diagnostic: str | None = None
    url: str | None = None
    user_agent: str | None = None
    ip: str | None = None


class SesAdapter(Adapter):
    """Amazon SES via SNS: verified SNS signatures, one event per recipient."""

    provider = "ses"
    content_types = ("text/plain", "application/json")
    required_fields = ("topic_arns",)

    async def verify(
        self, request: WebhookRequest, source: SourceSpec, context: VerifyContext
    ) -> None:
        self.verify_transport_auth(request, source)
        await verify_sns_message(request, source, context)

    def parse(
        self, request: WebhookRequest, source: SourceSpec, received_at: datetime
    ) -> ParseResult:
        envelope = expect_object(decode_json(request.body), "body")
        kind = req_str(envelope, "Type")
        sns_id = req_str(envelope, "MessageId")
        topic_arn = req_str(envelope, "TopicArn")
        if kind in CONFIRMATION_TYPES:
            return ParseResult(events=[], control=_control(kind, envelope, sns_id, topic_arn))
        if kind != "Notification":
            raise PayloadError(f"Type {kind!r} is not an SNS message type", "Type")
        message = req_str(envelope, "Message")
        if message.startswith(TOPIC_VALIDATION_TEXT):
            return ParseResult.non_tracking(
                ControlKind.TOPIC_VALIDATION, topic_arn=topic_arn, message_id=sns_id
            )
        ses_event = expect_object(decode_json(message, "Message"), "Message")
        if ses_event.get("notificationType") in SETUP_NOTIFICATIONS:
            return ParseResult.non_tracking(
                ControlKind.TOPIC_VALIDATION, topic_arn=topic_arn, message_id=sns_id
            )
        # the envelope's time: when SNS published it (the event's own time comes first)
        published_at = lenient(iso_to_utc, envelope.get("Timestamp"))
        return ParseResult(
            events=_normalize(
                ses_event,
                sns_id=sns_id,
                source=source,
                received_at=received_at,
                published_at=published_at,
            )
        )


#: the plain-text Notification SES publishes once when a configuration set's event
#: destination is pointed at an SNS topic: https://docs.aws.amazon.com/ses/latest/dg/event-publishing-add-event-destination-sns.html
TOPIC_VALIDATION_TEXT = "Successfully validated SNS topic for Amazon SES event publishing."
#: the JSON notice SES publishes when identity notifications are pointed at a topic
SETUP_NOTIFICATIONS = frozenset({"AmazonSnsSubscriptionSucceeded"})


def _control(kind: str, envelope: dict[str, Any], sns_id: str, topic_arn: str) -> ControlMessage:
    subscribe_url = req_str(envelope, "SubscribeURL")
    detail = {
        "topic_arn": topic_arn,
        "token": opt_str(envelope, "Token"),
        "message_id": sns_id,
    }
    if kind == "SubscriptionConfirmation":
        return ControlMessage(
            kind="subscription_confirmation", detail=detail, confirm_url=subscribe_url
        )
    # visiting SubscribeURL here would re-subscribe: hand it over, never as confirm_url
    detail["subscribe_url"] = subscribe_url
    return ControlMessage(kind="unsubscribe_confirmation", detail=detail, confirm_url=None)


def _normalize(
    ses_event: dict[str, Any],
    *,
    sns_id: str,
    source: SourceSpec,
    received_at: datetime,
    published_at: datetime | None = None,
) -> list[EmailEvent]:
    # event publishing names it eventType, identity notifications notificationType
    key = "eventType" if "eventType" in ses_event else "notificationType"
    if key not in ses_event:
        field = "Message.eventType"
        raise PayloadError(f"{field} (or notificationType) is required", field)
    kind = req_str(ses_event, key, "Message")
    mail = opt_object(ses_event, "mail")
    extractor = _EXTRACTORS.get(kind)
    if extractor is None and kind not in _PER_DESTINATION:
        details = [_Detail(recipient, EventType.UNKNOWN) for recipient in _destination(mail)]
    else:
        mail = expect_object(ses_event.get("mail"), "Message.mail")
        req_str(mail, "messageId", "Message.mail")
        if extractor is not None:
            details = extractor(ses_event)
        else:
            details = _per_destination(kind, ses_event, mail)
    tags = opt_object(mail or {}, "tags") or {}
    return [
        _event(
            detail,
            kind=kind,
            sns_id=sns_id,
            mail=mail or {},
            tags=tags,
            ses_event=ses_event,
            source=source,
            received_at=received_at,
            published_at=published_at,
        )
        for detail in details
    ]


def scalar_tags(tags: dict[str, Any]) -> dict[str, Any]:
    """SES message tags as metadata: SES sends every tag as an array of strings
    (``{"gw_message_id": ["gw-7c1e2a"]}``); a single value becomes that value, as every other
    ESP sends its metadata, so ``metadata=key:value`` finds SES messages the same way.
    Several values stay a list (the search matches any one of them)."""
    return {
        key: value[0] if isinstance(value, list) and len(value) == 1 else value
        for key, value in tags.items()
    }


def _event(
    detail: _Detail,
    *,
    kind: str,
    sns_id: str,
    mail: dict[str, Any],
    tags: dict[str, Any],
    ses_event: dict[str, Any],
    source: SourceSpec,
    received_at: datetime,
    published_at: datetime | None,
) -> EmailEvent:
    event_id = f"{sns_id}:{detail.recipient or ''}"
    occurred_at, time_source = event_time(received_at, detail.occurred_at, published_at)
    campaign_values = tags.get("campaign")
    campaigns = (
        [v for v in campaign_values if isinstance(v, str)]
        if isinstance(campaign_values, list)
        else []
    )
    return EmailEvent(
        provider=ADAPTER.provider,
        source=source.name,
        event_type=detail.event_type,
        occurred_at=occurred_at,
        received_at=received_at,
        recipient=canonical_address(detail.recipient),
        message_id=opt_str(mail, "messageId"),
        dedup_key=id_dedup_key(ADAPTER.provider, event_id),
        provider_event_id=event_id,
        esp_event=kind,
        bounce_class=detail.bounce_class,
        reason=detail.reason,
        smtp_status=detail.smtp_status,
        diagnostic=detail.diagnostic,
        url=detail.url,
        user_agent=detail.user_agent,
        ip=detail.ip,
        campaign=campaigns[0] if campaigns else None,
        metadata=scalar_tags(tags),
        raw=ses_event,
        time_source=time_source,
    )


def _destination(mail: dict[str, Any] | None) -> list[str | None]:
    """The recipients of an event SES names no one else for, when its kind is unknown: the
    message's destination addresses, else one event without a recipient."""
    addresses = [a for a in opt_list(mail or {}, "destination") or [] if isinstance(a, str) and a]
    return list(addresses) or [None]


def _addresses(container: dict[str, Any], key: str, path: str) -> list[str]:
    """A required, non-empty list of recipient addresses (``mail.destination``,
    ``delivery.recipients``)."""
    items = expect_list(container.get(key), f"{path}.{key}")
    if not items:
        raise PayloadError(f"{path}.{key} must name a recipient", f"{path}.{key}")
    for index, address in enumerate(items):
        if not isinstance(address, str) or not address:
            item_path = f"{path}.{key}[{index}]"
            raise PayloadError(f"{item_path} must be a non-empty string", item_path)
    return items


def _recipient_objects(
    container: dict[str, Any], key: str, path: str
) -> Iterable[tuple[str, dict[str, Any]]]:
    """(address, entry) per listed recipient; the list must name at least one."""
    items = expect_list(container.get(key), f"{path}.{key}")
    if not items:
        raise PayloadError(f"{path}.{key} must name a recipient", f"{path}.{key}")
    for index, item in enumerate(items):
        item_path = f"{path}.{key}[{index}]"
        entry = expect_object(item, item_path)
        yield req_str(entry, "emailAddress", item_path), entry


def _bounce(ses_event: dict[str, Any]) -> list[_Detail]:
    bounce = expect_object(ses_event.get("bounce"), "Message.bounce")
    bounce_type = opt_str(bounce, "bounceType")
    sub_type = opt_str(bounce, "bounceSubType")
    reason = "/".join(part for part in (bounce_type, sub_type) if part) or None
    occurred = opt_time(bounce, "timestamp", "Message.bounce", iso_to_utc)
    details = []
    for recipient, entry in _recipient_objects(bounce, "bouncedRecipients", "Message.bounce"):
        diagnostic = opt_str(entry, "diagnosticCode")
        details.append(
            _Detail(
                recipient,
                EventType.BOUNCED,
                occurred_at=occurred,
                bounce_class=_BOUNCE_CLASSES.get(bounce_type or "", BounceClass.UNDETERMINED),
                reason=reason,
                smtp_status=opt_str(entry, "status") or smtp_status_from_text(diagnostic),
                diagnostic=diagnostic,
            )
        )
    return details


def _complaint(ses_event: dict[str, Any]) -> list[_Detail]:
    complaint = expect_object(ses_event.get("complaint"), "Message.complaint")
    reason = opt_str(complaint, "complaintFeedbackType") or opt_str(complaint, "complaintSubType")
    occurred = opt_time(complaint, "timestamp", "Message.complaint", iso_to_utc)
    return [
        _Detail(recipient, EventType.COMPLAINED, occurred_at=occurred, reason=reason)
        for recipient, _ in _recipient_objects(
            complaint, "complainedRecipients", "Message.complaint"
        )
    ]


def _delivery(ses_event: dict[str, Any]) -> list[_Detail]:
    delivery = expect_object(ses_event.get("delivery"), "Message.delivery")
    recipients = _addresses(delivery, "recipients", "Message.delivery")
    response = opt_str(delivery, "smtpResponse")
    occurred = opt_time(delivery, "timestamp", "Message.delivery", iso_to_utc)
    return [
        _Detail(
            recipient,
            EventType.DELIVERED,
            occurred_at=occurred,
            smtp_status=smtp_status_from_text(response),
            diagnostic=response,
        )
        for recipient in recipients
    ]


def _delivery_delay(ses_event: dict[str, Any]) -> list[_Detail]:
    delay = expect_object(ses_event.get("deliveryDelay"), "Message.deliveryDelay")
    occurred = opt_time(delay, "timestamp", "Message.deliveryDelay", iso_to_utc)
    reason = opt_str(delay, "delayType")
    details = []
    for recipient, entry in _recipient_objects(delay, "delayedRecipients", "Message.deliveryDelay"):
        diagnostic = opt_str(entry, "diagnosticCode")
        details.append(
            _Detail(
                recipient,
                EventType.DEFERRED,
                occurred_at=occurred,
                reason=reason,
                smtp_status=opt_str(entry, "status") or smtp_status_from_text(diagnostic),
                diagnostic=diagnostic,
            )
        )
    return details


def _per_destination(kind: str, ses_event: dict[str, Any], mail: dict[str, Any]) -> list[_Detail]:
    event_type = _PER_DESTINATION[kind]
    detail = _Detail(None, event_type)
    recipients = _addresses(mail, "destination", "Message.mail")
    if kind in ("Send", "Reject", "Rendering Failure", "RenderingFailure"):
        detail.occurred_at = opt_time(mail, "timestamp", "Message.mail", iso_to_utc)
    if kind == "Reject":
        detail.reason = opt_str(opt_object(ses_event, "reject") or {}, "reason")
    elif kind in ("Rendering Failure", "RenderingFailure"):
        failure = opt_object(ses_event, "failure") or {}
        detail.reason = opt_str(failure, "errorMessage")
        detail.diagnostic = opt_str(failure, "templateName")
    elif kind in ("Open", "Click"):
        action_path = f"Message.{kind.lower()}"
        action = expect_object(ses_event.get(kind.lower()), action_path)
        detail.occurred_at = opt_time(action, "timestamp", action_path, iso_to_utc)
        detail.ip = opt_str(action, "ipAddress")
        detail.user_agent = opt_str(action, "userAgent")
        detail.url = opt_str(action, "link") if kind == "Click" else None
    elif kind == "Subscription":
        subscription = expect_object(ses_event.get("subscription"), "Message.subscription")
        detail.event_type = _subscription_type(subscription)
        detail.occurred_at = opt_time(subscription, "timestamp", "Message.subscription", iso_to_utc)
        detail.reason = opt_str(subscription, "source")
    return [replace(detail, recipient=recipient) for recipient in recipients]


def _topic_statuses(preferences: dict[str, Any]) -> dict[str, str]:
    statuses: dict[str, str] = {}
    for entry in opt_list(preferences, "topicSubscriptionStatus") or []:
        if isinstance(entry, dict):
            topic = opt_str(entry, "topicName")
            status = opt_str(entry, "subscriptionStatus")
            if topic is not None and status is not None:
                statuses[topic] = status
    return statuses


def _subscription_type(subscription: dict[str, Any]) -> EventType:
    """Unsubscribed unless the new preferences opt back in to something opted out before.

    SES publishes a Subscription event when a recipient changes their preferences through
    the List-Unsubscribe header or the unsubscribe link: ``unsubscribeAll`` or a topic
    that went to OptOut is an unsubscribe; clearing ``unsubscribeAll`` or a topic going
    from OptOut back to OptIn is a resubscribe.
    """
    new = opt_object(subscription, "newTopicPreferences") or {}
    old = opt_object(subscription, "oldTopicPreferences") or {}
    if opt_bool(new, "unsubscribeAll"):
        return EventType.UNSUBSCRIBED
    new_status = _topic_statuses(new)
    old_status = _topic_statuses(old)
    if any(
        status == "OptOut" and old_status.get(topic) != "OptOut"
        for topic, status in new_status.items()
    ):
        return EventType.UNSUBSCRIBED
    if opt_bool(old, "unsubscribeAll") or any(
        status == "OptIn" and old_status.get(topic) == "OptOut"
        for topic, status in new_status.items()
    ):
        return EventType.RESUBSCRIBED
    return EventType.UNSUBSCRIBED


_EXTRACTORS: dict[str, Callable[[dict[str, Any]], list[_Detail]]] = {
    "Bounce": _bounce,
    "Complaint": _complaint,
    "Delivery": _delivery,
    "DeliveryDelay": _delivery_delay,
}

ADAPTER = SesAdapter()
