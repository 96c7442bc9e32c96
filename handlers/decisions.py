"""The normalization decision table: every ESP event name and subtype, what Hookline makes of
it, whether it suppresses, and why, with a link to the ESP's documentation.

The rows are read from the adapters' own mapping tables (``EVENT_TYPES``, ``BOUNCE_TYPES``,
``BOUNCE_CLASS_TABLE`` ...) and decision functions, so the table cannot disagree with what
the adapters do; the reasons are written here. ``docs/providers.md`` is this table rendered
(``python -m handlers.decisions > docs/providers.md``; a test fails when it is stale).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

from handlers import (
    brevo,
    mailgun,
    mailjet,
    mandrill,
    postal,
    postmark,
    resend,
    sendgrid,
    ses,
    sparkpost,
)
from handlers.base import ControlKind
from handlers.events import BounceClass, EventType
from handlers.registry import PROVIDERS

__all__ = ["DECISIONS", "Decision", "render", "suppression_effect"]

#: each ESP's webhook event reference
DOCS: dict[str, str] = {
    "sendgrid": "https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event",
    "mailgun": "https://documentation.mailgun.com/docs/mailgun/user-manual/events/event-types",
    "postmark": "https://postmarkapp.com/developer/webhooks/webhooks-overview",
    "ses": "https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html",
    "sparkpost": "https://developers.sparkpost.com/api/webhooks/",
    "mailjet": "https://dev.mailjet.com/email/guides/webhooks/",
    "mandrill": "https://mailchimp.com/developer/transactional/docs/webhooks/",
    "brevo": "https://developers.brevo.com/docs/transactional-webhooks",
    "resend": "https://resend.com/docs/dashboard/webhooks/event-types",
    "postal": "https://docs.postalserver.io/developer/webhooks",
}
_SENDGRID_INBOUND_PARSE = (
    "https://www.twilio.com/docs/sendgrid/for-developers/parsing-email/"
    "setting-up-the-inbound-parse-webhook"
)
_POSTMARK_BOUNCES = "https://postmarkapp.com/developer/api/bounce-api#bounce-types"
_SPARKPOST_CLASSES = "https://support.sparkpost.com/docs/deliverability/bounce-classification-codes"
_SES_BOUNCES = "https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html#bounce-types"
_SES_VALIDATION = (
    "https://docs.aws.amazon.com/ses/latest/dg/event-publishing-add-event-destination-sns.html"
)

#: the default one-line reason for each normalized type
_WHY: dict[str, str] = {
    EventType.QUEUED: "accepted by the ESP, not attempted yet",
    EventType.SENT: "the ESP sent the message",
    EventType.DELIVERED: "the receiving server accepted the message",
    EventType.DEFERRED: "a temporary failure: the ESP keeps trying (or may still send it)",
    EventType.DROPPED: "the ESP did not send the message: no bounce, nothing suppressed",
    EventType.OPENED: "a tracked open",
    EventType.CLICKED: "a tracked click",
    EventType.COMPLAINED: "the recipient reported the message as spam",
    EventType.UNSUBSCRIBED: "the recipient unsubscribed",
    EventType.RESUBSCRIBED: "the recipient subscribed again (lifts an unsubscribe only)",
    EventType.AUTO_REPLIED: "a mailbox answering (auto-reply, challenge-response): no bounce",
    EventType.UNKNOWN: "not an outcome of a sent email: kept in the timeline, never acted on",
    "bounced:hard": "a permanent failure: the address does not take mail",
    "bounced:soft": "a failure that can pass (mailbox full, blocked): counts to a quarantine",
    "bounced:undetermined": "a failure the ESP did not classify: counts to a quarantine",
    ControlKind.SUBSCRIPTION_CONFIRMATION: "SNS asks to confirm the subscription",
    ControlKind.UNSUBSCRIBE_CONFIRMATION: "SNS reports an unsubscribe",
    ControlKind.TOPIC_VALIDATION: "SES checks the topic it publishes to: 200, no event",
    ControlKind.INBOUND_MESSAGE: "a received email at the tracking URL (inbound route "
    "misconfigured): 200, no event",
    ControlKind.INBOUND_EVENT: "about a message the organisation received, not one it sent: "
    "200, no event",
}


@dataclass(frozen=True, slots=True)
class Decision:
    """One ESP event (and subtype) and what Hookline makes of it."""

    provider: str
    esp_event: str
    #: the field and value that refine the event (``Type=HardBounce``), "" for none
    subtype: str
    #: an ``EventType`` value, or ``control:<ControlKind>`` for non-tracking messages
    normalized: str
    bounce_class: BounceClass | None
    reason: str
    doc: str

    @property
    def suppression(self) -> str:
        if self.normalized.startswith("control:"):
            return "no"
        return suppression_effect(EventType(self.normalized), self.bounce_class)


def suppression_effect(event_type: EventType, bounce_class: BounceClass | None) -> str:
    """What the suppression processor does with such an event (a test checks this against
    ``gateway.delivery``): suppress at once, count towards a quarantine, lift, or nothing."""
    if event_type is EventType.BOUNCED:
        return "suppresses" if bounce_class is BounceClass.HARD else "quarantine count"
    if event_type in (EventType.COMPLAINED, EventType.UNSUBSCRIBED):
        return "suppresses"
    if event_type is EventType.RESUBSCRIBED:
        return "lifts unsubscribe"
    return "no"


def _row(
    provider: str,
    esp_event: str,
    event_type: EventType | ControlKind,
    bounce_class: BounceClass | None = None,
    *,
    subtype: str = "",
    why: str | None = None,
    doc: str | None = None,
) -> Decision:
    if isinstance(event_type, ControlKind):
        normalized, default = f"control:{event_type.value}", _WHY[event_type]
    elif event_type is EventType.BOUNCED:
        normalized = event_type.value
        default = _WHY[f"bounced:{(bounce_class or BounceClass.UNDETERMINED).value}"]
    else:
        normalized, default = event_type.value, _WHY[event_type]
    return Decision(
        provider,
        esp_event,
        subtype,
        normalized,
        bounce_class,
        why or default,
        doc or DOCS[provider],
    )


def _sendgrid() -> Iterator[Decision]:
    for name, event_type in sendgrid.EVENT_TYPES.items():
        if event_type is not EventType.BOUNCED:
            yield _row("sendgrid", name, event_type)
    for kind, bounce_class in sendgrid.BOUNCE_CLASSES.items():
        yield _row("sendgrid", "bounce", EventType.BOUNCED, bounce_class, subtype=f"type={kind}")
    yield _row(
        "sendgrid",
        "bounce",
        EventType.BOUNCED,
        BounceClass.UNDETERMINED,
        subtype="type=(other)",
    )
    yield _row(
        "sendgrid",
        "(Inbound Parse: multipart with envelope + headers/email)",
        ControlKind.INBOUND_MESSAGE,
        doc=_SENDGRID_INBOUND_PARSE,
    )


def _mailgun() -> Iterator[Decision]:
    for name, event_type in mailgun.EVENT_TYPES.items():
        if name != "failed":
            yield _row("mailgun", name, event_type)
    cases = [
        ("severity=permanent", "permanent", "bounce", None),
        ("severity=temporary", "temporary", "generic", None),
        ("reason=old", "temporary", "old", "Mailgun gave up retrying: final, but may pass"),
        (
            "reason=suppress-*",
            "permanent",
            "suppress-bounce",
            "Mailgun's own do-not-send list refused it: not sent, the earlier event counted",
        ),
        ("(no severity)", None, None, None),
    ]
    for subtype, severity, reason, why in cases:
        event_type, bounce_class = mailgun._failed_outcome(severity, reason)
        yield _row("mailgun", "failed", event_type, bounce_class, subtype=subtype, why=why)
    yield _row("mailgun", "(inbound route: form with body-plain ...)", ControlKind.INBOUND_MESSAGE)


def _postmark() -> Iterator[Decision]:
    for record, event_type in postmark.RECORD_TYPES.items():
        if record not in ("Bounce", "SubscriptionChange"):
            yield _row("postmark", record, event_type)
    for kind, (event_type, bounce_class) in postmark.BOUNCE_TYPES.items():
        why = None
        if event_type is EventType.UNKNOWN:
            why = "not a delivery outcome (address change, relay test, inbound error)"
        elif event_type is EventType.DEFERRED:
            why = "Postmark keeps retrying"
        elif kind == "SpamNotification":
            why = (
                "the receiving server filtered it as spam, not the recipient: counts to a "
                "quarantine, never a complaint"
            )
        yield _row(
            "postmark",
            "Bounce",
            event_type,
            bounce_class,
            subtype=f"Type={kind}",
            why=why,
            doc=_POSTMARK_BOUNCES,
        )
    yield _row(
        "postmark",
        "SubscriptionChange",
        EventType.UNSUBSCRIBED,
        subtype="SuppressSending=true, SuppressionReason=ManualSuppression",
        why="the recipient (or the sender) asked to stop",
    )
    for reason in sorted(postmark.ECHO_SUPPRESSION_REASONS):
        yield _row(
            "postmark",
            "SubscriptionChange",
            EventType.UNKNOWN,
            subtype=f"SuppressSending=true, SuppressionReason={reason}",
            why="echoes a Bounce/SpamComplaint record Postmark sends anyway: neither an "
            "unsubscribe nor a second bounce",
        )
    yield _row(
        "postmark", "SubscriptionChange", EventType.RESUBSCRIBED, subtype="SuppressSending=false"
    )
    yield _row("postmark", "(inbound webhook)", ControlKind.INBOUND_MESSAGE)


def _ses() -> Iterator[Decision]:
    for kind, bounce_class in ses._BOUNCE_CLASSES.items():
        yield _row(
            "ses",
            "Bounce",
            EventType.BOUNCED,
            bounce_class,
            subtype=f"bounceType={kind}",
            doc=_SES_BOUNCES,
        )
    yield _row("ses", "Complaint", EventType.COMPLAINED)
    yield _row("ses", "Delivery", EventType.DELIVERED)
    yield _row("ses", "DeliveryDelay", EventType.DEFERRED)
    for kind, event_type in ses._PER_DESTINATION.items():
        if kind != "Subscription":
            yield _row("ses", kind, event_type)
    yield _row("ses", "Subscription", EventType.UNSUBSCRIBED, subtype="opted out")
    yield _row("ses", "Subscription", EventType.RESUBSCRIBED, subtype="opted in again")
    yield _row("ses", "SubscriptionConfirmation", ControlKind.SUBSCRIPTION_CONFIRMATION)
    yield _row("ses", "UnsubscribeConfirmation", ControlKind.UNSUBSCRIBE_CONFIRMATION)
    yield _row(
        "ses",
        "Notification",
        ControlKind.TOPIC_VALIDATION,
        subtype="Message=Successfully validated SNS topic ...",
        doc=_SES_VALIDATION,
    )
    for notice in sorted(ses.SETUP_NOTIFICATIONS):
        yield _row("ses", notice, ControlKind.TOPIC_VALIDATION)


def _sparkpost() -> Iterator[Decision]:
    for name, event_type in sparkpost.EVENT_TYPES.items():
        if event_type is EventType.BOUNCED:
            continue
        why = None
        if name in ("initial_open", "amp_initial_open"):
            why = "an open (top pixel); rates count the first open per message and recipient"
        yield _row("sparkpost", name, event_type, why=why)
    for code, (label, bounce_class) in sparkpost.BOUNCE_CLASS_TABLE.items():
        auto = code in sparkpost.AUTO_REPLY_CLASSES
        yield _row(
            "sparkpost",
            "bounce / out_of_band",
            EventType.AUTO_REPLIED if auto else EventType.BOUNCED,
            None if auto else bounce_class,
            subtype=f"bounce_class={code} ({label})",
            doc=_SPARKPOST_CLASSES,
        )
    yield _row("sparkpost", "relay_message", ControlKind.INBOUND_MESSAGE)


def _mailjet() -> Iterator[Decision]:
    for name, event_type in mailjet.EVENT_TYPES.items():
        if event_type is not EventType.BOUNCED:
            yield _row("mailjet", name, event_type)
    yield _row("mailjet", "bounce", EventType.BOUNCED, BounceClass.HARD, subtype="hard_bounce=true")
    yield _row(
        "mailjet", "bounce", EventType.BOUNCED, BounceClass.SOFT, subtype="hard_bounce=false"
    )
    yield _row(
        "mailjet",
        "bounce",
        EventType.DEFERRED,
        subtype="hard_bounce=false, error=greylisted",
        why="greylisting: the server asks to retry later",
    )
    yield _row("mailjet", "(Parse API payload)", ControlKind.INBOUND_MESSAGE)


def _mandrill() -> Iterator[Decision]:
    for name, event_type in mandrill._EVENT_TYPES.items():
        yield _row("mandrill", name, event_type, mandrill._BOUNCE_CLASSES.get(name))
    yield _row("mandrill", "(sync: whitelist / blacklist)", EventType.UNKNOWN)
    yield _row("mandrill", "inbound", ControlKind.INBOUND_MESSAGE)


def _brevo() -> Iterator[Decision]:
    for name, (event_type, bounce_class, machine) in brevo.EVENT_TYPES.items():
        why = "a privacy-proxy open (e.g. Apple MPP): machine_open" if machine else None
        if name in ("invalid_email", "invalid"):
            why = "Brevo refused an invalid address: never sent, no bounce"
        elif name == "unsubscribe":
            why = "the marketing webhooks' spelling of unsubscribed"
        yield _row("brevo", name, event_type, bounce_class, why=why)
    yield _row("brevo", "(inbound parsing: {items: [...]})", ControlKind.INBOUND_MESSAGE)


def _resend() -> Iterator[Decision]:
    for name, event_type in resend._EVENT_TYPES.items():
        if event_type is not EventType.BOUNCED:
            yield _row("resend", name, event_type)
    for kind, bounce_class in resend._BOUNCE_CLASSES.items():
        yield _row(
            "resend", "email.bounced", EventType.BOUNCED, bounce_class, subtype=f"type={kind}"
        )
    yield _row(
        "resend",
        "email.bounced",
        EventType.BOUNCED,
        BounceClass.UNDETERMINED,
        subtype="type=(other or none: older payloads)",
    )
    yield _row("resend", "contact.updated", EventType.UNSUBSCRIBED, subtype="unsubscribed=true")
    yield _row("resend", "contact.updated", EventType.RESUBSCRIBED, subtype="unsubscribed=false")
    yield _row("resend", "contact.* / domain.*", EventType.UNKNOWN)
    for name in sorted(resend.INBOUND_EVENTS):
        yield _row("resend", name, ControlKind.INBOUND_MESSAGE)


def _postal() -> Iterator[Decision]:
    for name, event_type in postal._EVENT_TYPES.items():
        bounce_class = postal._bounce_class(name, {})
        why = None
        if name == "MessageHeld":
            why = "held for review; a MessageSent follows if released (dropped would outrank it)"
        yield _row("postal", name, event_type, bounce_class, subtype="direction=outgoing", why=why)
    yield _row(
        "postal", "(any message event)", ControlKind.INBOUND_EVENT, subtype="direction=incoming"
    )
    yield _row("postal", "DomainDNSError / SendLimit*", EventType.UNKNOWN)


DECISIONS: tuple[Decision, ...] = tuple(
    decision
    for rows in (
        _sendgrid,
        _mailgun,
        _postmark,
        _ses,
        _sparkpost,
        _mailjet,
        _mandrill,
        _brevo,
        _resend,
        _postal,
    )
    for decision in rows()
)

_LIMITS = """\
## Not recognised (yet)

- A `multipart/form-data` body at SendGrid's event URL that is not an Inbound Parse post
  (an `envelope` JSON object with `to` and `from`, plus `headers` or `email`): refused
  (415). Inbound Parse itself is unsigned: it is acknowledged (200) and nothing in it is
  stored or acted on; point it at its own URL to receive the mail.
- A batch mixing inbound items and events (a whole batch is a control message only when
  every item is inbound): the events are stored; Mandrill's `inbound` items are stored as
  `unknown`, SparkPost's `relay_message` items are rejected alone (no `type`).
- Recipients and suppression entries stored before canonical addresses (display-name
  spellings, upper-case domains) are rewritten by migration 0011, except those whose
  domain is not ASCII (IDNA is not done in SQL): they keep their old spelling, and new
  events of the same address use the canonical one.

"""

_FIELD_POLICY = """\
## How fields are read

Every adapter reads its body through one library, `handlers/_common.py`, with one
strictness policy, so a malformed field has the same outcome whichever ESP sent it:

- **Required**: the body's shape; the event type (the ESP's event name, and a flag that
  decides the normalized type or bounce class where there is no "undetermined" to fall back
  to: Postmark's `SuppressSending`, Mailjet's `hard_bounce`); the recipient of an event of
  a type the adapter knows (events stored as `unknown` may have none); an event time that
  is present. Missing, empty or of the wrong type, a required field is a 400 naming the
  field (`field` in the problem body) for a single-event request; in a batch only that item
  is refused and quarantined ([quarantine.md](quarantine.md)), the others are stored.
- **Optional**: everything else (ids, reasons, diagnostics, URLs, user agents, tags,
  metadata). Of the wrong type it is treated as absent and the event is stored: refusing
  the request would make the ESP retry and finally drop a real event, and `raw` keeps the
  value exactly as sent. Ids sent as numbers are read as text; an empty string is absent.
- **Time**: `occurred_at` is the event's own time, else the envelope's, else the receipt
  time; `time_source` (`event`, `envelope` or `received`) records which, on every event of
  the admin API (`/v1/events`). The envelope is SendGrid's signed timestamp header,
  Mailgun's `signature.timestamp`, the SNS envelope's `Timestamp` (SES), Brevo's `s_epoch`
  (when the message was sent), Resend's `svix-timestamp` and Postal's webhook `timestamp`;
  the other ESPs send none. An event time that is present
  must parse (seconds or milliseconds since the epoch, or ISO 8601): a garbage time is
  refused rather than replaced by another one. An envelope time that does not parse is
  skipped.
- **SMTP status**: one parser for every adapter: the enhanced code (`5.1.1`) anywhere in
  the MTA response, else the reply code (`550`) at its start.

"""

_ADDING_AN_ESP = """\
## Adding an ESP

Four places, and the documentation of its mapping; everything else (the load-test mix and
batching, the default load profile, the contract, fuzz, metadata and traffic tests, the
CLI's `hookline sign` and `hookline demo`) is read from them.

1. `handlers/<provider>.py`: an `Adapter` subclass as `ADAPTER` (verify, parse; see
   `handlers/base.py`) and the mapping tables for its event names. Only what the gateway
   runs goes here. Store recipients through `handlers.addresses.canonical_address`; return
   `ParseResult.non_tracking(...)` for anything that is not a tracking event (inbound mail,
   setup messages, pings).
2. One line: the provider id in `PROVIDERS` in `handlers/registry.py`.
3. `hookline_testing/_<provider>.py`: its samples as `SAMPLES = Samples(...)` (see
   `hookline_testing/_samples.py`): `make_source`, `example_body` and `signed_request` (send
   traffic the way the ESP does), the ESP event names `example_body` builds (what each
   normalizes to is read from the adapter), `one_event_per_request`, `traffic_share` (its
   share of load-test requests), `add_metadata` (where it carries custom data) and
   `batch_items` (where a batch keeps its items).
4. `tests/fixtures/<provider>/`: real-shaped bodies from the ESP's documentation, with a
   `SOURCES.md` naming the examples they come from, and `tests/unit/handlers/test_<provider>.py`
   checking the adapter against them.
5. Its documentation: rows in `handlers/decisions.py` (a `_<provider>` function reading the
   adapter's own tables, with a reason and a link, listed in `DECISIONS`; its entry in
   `DOCS`), then regenerate this file (`python -m handlers.decisions > docs/providers.md`);
   and its row in the "Sources, per provider" table of `docs/configuration.md`.

Tests fail until each is there: `tests/unit/handlers/test_contract.py` wants the adapter,
the samples and the fixtures of every provider in `PROVIDERS`, `tests/unit/test_decisions.py`
its rows and this file.
"""


def render() -> str:
    """``docs/providers.md``: the table per provider, how fields are read, what is not
    recognised, then how to add an ESP."""
    lines = [
        "# Providers: how each ESP event is normalized",
        "",
        "Generated by `python -m handlers.decisions` from `handlers/decisions.py`, which reads",
        "the adapters' own mapping tables; do not edit by hand (a test fails when stale).",
        "",
        "*Suppression*: `suppresses` puts the address on the suppression list at once;",
        "`quarantine count` counts towards a soft-bounce quarantine; `lifts unsubscribe` takes",
        "an unsubscribe off the list; `no` never touches the list. `control:<kind>` rows are",
        "not tracking events: answered 200, logged, counted in",
        "`hookline_control_messages_total{kind}`, never stored as an event.",
        "",
    ]
    for provider in PROVIDERS:
        lines += [
            f"## {provider}",
            "",
            f"Event reference: <{DOCS[provider]}>",
            "",
            "| ESP event | Subtype | Normalized | Bounce class | Suppression | Why |",
            "|---|---|---|---|---|---|",
        ]
        for d in DECISIONS:
            if d.provider != provider:
                continue
            link = "" if d.doc == DOCS[provider] else f" ([docs]({d.doc}))"
            cells = [
                f"`{d.esp_event}`",
                d.subtype.replace("|", "\\|"),
                f"`{d.normalized}`",
                d.bounce_class.value if d.bounce_class else "",
                d.suppression,
                d.reason + link,
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n" + _FIELD_POLICY + _LIMITS + _ADDING_AN_ESP


if __name__ == "__main__":
    sys.stdout.write(render())
