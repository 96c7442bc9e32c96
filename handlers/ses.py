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

from handlers._extract import (
    decode_json,
    decode_json_text,
    iso_to_utc,
    optional_bool,
    optional_dict,
    optional_list,
    optional_str,
    require_dict,
    require_list,
    require_str,
    smtp_status_from,
    timestamp_or,
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
        envelope = require_dict(decode_json(request.body), "body")
        kind = require_str(envelope, "Type", "Type")
        sns_id = require_str(envelope, "MessageId", "MessageId")
        topic_arn = require_str(envelope, "TopicArn", "TopicArn")
        if kind in CONFIRMATION_TYPES:
            return ParseResult(events=[], control=_control(kind, envelope, sns_id, topic_arn))
        if kind != "Notification":
            raise PayloadError(f"Type {kind!r} is not an SNS message type", "Type")
        message = require_str(envelope, "Message", "Message")
        if message.startswith(TOPIC_VALIDATION_TEXT):
            return ParseResult.non_tracking(
                ControlKind.TOPIC_VALIDATION, topic_arn=topic_arn, message_id=sns_id
            )
        ses_event = require_dict(decode_json_text(message, "Message"), "Message")
        if ses_event.get("notificationType") in SETUP_NOTIFICATIONS:
            return ParseResult.non_tracking(
                ControlKind.TOPIC_VALIDATION, topic_arn=topic_arn, message_id=sns_id
            )
        # the envelope's time: when SNS published it (the event's own time comes first)
        published_at = iso_to_utc(envelope.get("Timestamp"))
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
    subscribe_url = require_str(envelope, "SubscribeURL", "SubscribeURL")
    detail = {
        "topic_arn": topic_arn,
        "token": optional_str(envelope, "Token"),
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
    kind = optional_str(ses_event, "eventType") or optional_str(ses_event, "notificationType")
    if kind is None:
        field = "Message.eventType"
        raise PayloadError(f"{field} (or notificationType) is required", field)
    mail = optional_dict(ses_event, "mail")
    extractor = _EXTRACTORS.get(kind)
    if extractor is None and kind not in _PER_DESTINATION:
        details = [_Detail(recipient, EventType.UNKNOWN) for recipient in _destination(mail)]
    else:
        mail = require_dict(ses_event.get("mail"), "Message.mail")
        require_str(mail, "messageId", "Message.mail.messageId")
        if extractor is not None:
            details = extractor(ses_event)
        else:
            details = _per_destination(kind, ses_event, mail)
    tags = optional_dict(mail or {}, "tags") or {}
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
        occurred_at=timestamp_or(received_at, detail.occurred_at, published_at),
        received_at=received_at,
        recipient=canonical_address(detail.recipient),
        message_id=optional_str(mail, "messageId"),
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
    )


def _destination(mail: dict[str, Any] | None) -> list[str | None]:
    if mail is None:
        return [None]
    addresses = [a for a in optional_list(mail, "destination") or [] if isinstance(a, str)]
    return list(addresses) or [None]


def _recipient_objects(
    container: dict[str, Any], key: str, path: str
) -> Iterable[tuple[str | None, dict[str, Any]]]:
    """(address, entry) per listed recipient; one (None, {}) when the list is empty, so
    that an event is never lost because the ESP listed nobody."""
    items = require_list(container.get(key), f"{path}.{key}")
    if not items:
        yield None, {}
    for index, item in enumerate(items):
        item_path = f"{path}.{key}[{index}]"
        entry = require_dict(item, item_path)
        yield require_str(entry, "emailAddress", f"{item_path}.emailAddress"), entry


def _bounce(ses_event: dict[str, Any]) -> list[_Detail]:
    bounce = require_dict(ses_event.get("bounce"), "Message.bounce")
    bounce_type = optional_str(bounce, "bounceType")
    sub_type = optional_str(bounce, "bounceSubType")
    reason = "/".join(part for part in (bounce_type, sub_type) if part) or None
    occurred = iso_to_utc(bounce.get("timestamp"))
    details = []
    for recipient, entry in _recipient_objects(bounce, "bouncedRecipients", "Message.bounce"):
        diagnostic = optional_str(entry, "diagnosticCode")
        details.append(
            _Detail(
                recipient,
                EventType.BOUNCED,
                occurred_at=occurred,
                bounce_class=_BOUNCE_CLASSES.get(bounce_type or "", BounceClass.UNDETERMINED),
                reason=reason,
                smtp_status=optional_str(entry, "status") or smtp_status_from(diagnostic),
                diagnostic=diagnostic,
            )
        )
    return details


def _complaint(ses_event: dict[str, Any]) -> list[_Detail]:
    complaint = require_dict(ses_event.get("complaint"), "Message.complaint")
    reason = optional_str(complaint, "complaintFeedbackType") or optional_str(
        complaint, "complaintSubType"
    )
    occurred = iso_to_utc(complaint.get("timestamp"))
    return [
        _Detail(recipient, EventType.COMPLAINED, occurred_at=occurred, reason=reason)
        for recipient, _ in _recipient_objects(
            complaint, "complainedRecipients", "Message.complaint"
        )
    ]


def _delivery(ses_event: dict[str, Any]) -> list[_Detail]:
    delivery = require_dict(ses_event.get("delivery"), "Message.delivery")
    recipients = require_list(delivery.get("recipients"), "Message.delivery.recipients")
    response = optional_str(delivery, "smtpResponse")
    occurred = iso_to_utc(delivery.get("timestamp"))
    details = []
    for index, recipient in enumerate(recipients or [None]):
        if recipients and (not isinstance(recipient, str) or not recipient):
            path = f"Message.delivery.recipients[{index}]"
            raise PayloadError(f"{path} must be a non-empty string", path)
        details.append(
            _Detail(
                recipient,
                EventType.DELIVERED,
                occurred_at=occurred,
                smtp_status=smtp_status_from(response),
                diagnostic=response,
            )
        )
    return details


def _delivery_delay(ses_event: dict[str, Any]) -> list[_Detail]:
    delay = require_dict(ses_event.get("deliveryDelay"), "Message.deliveryDelay")
    occurred = iso_to_utc(delay.get("timestamp"))
    reason = optional_str(delay, "delayType")
    details = []
    for recipient, entry in _recipient_objects(delay, "delayedRecipients", "Message.deliveryDelay"):
        diagnostic = optional_str(entry, "diagnosticCode")
        details.append(
            _Detail(
                recipient,
                EventType.DEFERRED,
                occurred_at=occurred,
                reason=reason,
                smtp_status=optional_str(entry, "status") or smtp_status_from(diagnostic),
                diagnostic=diagnostic,
            )
        )
    return details


def _per_destination(kind: str, ses_event: dict[str, Any], mail: dict[str, Any]) -> list[_Detail]:
    event_type = _PER_DESTINATION[kind]
    detail = _Detail(None, event_type)
    if kind in ("Send", "Reject", "Rendering Failure", "RenderingFailure"):
        detail.occurred_at = iso_to_utc(mail.get("timestamp"))
    if kind == "Reject":
        detail.reason = optional_str(optional_dict(ses_event, "reject") or {}, "reason")
    elif kind in ("Rendering Failure", "RenderingFailure"):
        failure = optional_dict(ses_event, "failure") or {}
        detail.reason = optional_str(failure, "errorMessage")
        detail.diagnostic = optional_str(failure, "templateName")
    elif kind in ("Open", "Click"):
        action = require_dict(ses_event.get(kind.lower()), f"Message.{kind.lower()}")
        detail.occurred_at = iso_to_utc(action.get("timestamp"))
        detail.ip = optional_str(action, "ipAddress")
        detail.user_agent = optional_str(action, "userAgent")
        detail.url = optional_str(action, "link") if kind == "Click" else None
    elif kind == "Subscription":
        subscription = require_dict(ses_event.get("subscription"), "Message.subscription")
        detail.event_type = _subscription_type(subscription)
        detail.occurred_at = iso_to_utc(subscription.get("timestamp"))
        detail.reason = optional_str(subscription, "source")
    return [replace(detail, recipient=recipient) for recipient in _destination(mail)]


def _topic_statuses(preferences: dict[str, Any]) -> dict[str, str]:
    statuses: dict[str, str] = {}
    for entry in optional_list(preferences, "topicSubscriptionStatus") or []:
        if isinstance(entry, dict):
            topic = optional_str(entry, "topicName")
            status = optional_str(entry, "subscriptionStatus")
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
    new = optional_dict(subscription, "newTopicPreferences") or {}
    old = optional_dict(subscription, "oldTopicPreferences") or {}
    if optional_bool(new, "unsubscribeAll"):
        return EventType.UNSUBSCRIBED
    new_status = _topic_statuses(new)
    old_status = _topic_statuses(old)
    if any(
        status == "OptOut" and old_status.get(topic) != "OptOut"
        for topic, status in new_status.items()
    ):
        return EventType.UNSUBSCRIBED
    if optional_bool(old, "unsubscribeAll") or any(
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
