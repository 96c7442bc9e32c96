"""Typed response bodies of the read endpoints (msgspec Structs, so the OpenAPI document
describes them exactly)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import msgspec

__all__ = [
    "EventItem",
    "EventPage",
    "InactivePage",
    "MessageTimeline",
    "Problem",
    "Rates",
    "RecipientActivity",
    "RecipientHistory",
    "StatsDetails",
    "StatsGroup",
    "StatsReport",
]


class EventItem(msgspec.Struct, kw_only=True):
    """One stored event with the normalized fields; ``raw`` only with ``include=raw``."""

    id: int
    provider: str
    source: str
    event_type: str
    esp_event: str | None
    occurred_at: datetime
    received_at: datetime
    recipient: str | None
    message_id: str | None
    provider_event_id: str | None
    dedup_key: str
    bounce_class: str | None
    reason: str | None
    smtp_status: str | None
    diagnostic: str | None
    url: str | None
    user_agent: str | None
    ip: str | None
    machine_open: bool
    campaign: str | None
    tags: list[str]
    metadata: dict[str, Any]
    raw: Any = None
    #: where occurred_at came from: ``event`` (the ESP's time for the event), ``envelope``
    #: (the event had none: the time of the request that carried it) or ``received``
    time_source: str = "event"


class EventPage(msgspec.Struct, kw_only=True):
    items: list[EventItem]
    #: pass as ``cursor`` for the next (older) page; null on the last page
    next_cursor: str | None


class MessageTimeline(msgspec.Struct, kw_only=True):
    message_id: str
    provider: str
    #: every provider that reported the id (normally one)
    providers: list[str]
    #: lower-cased recipient addresses, sorted
    recipients: list[str]
    #: recipient -> the furthest state reached (see the status precedence)
    status: dict[str, str]
    #: in time order (oldest first)
    events: list[EventItem]
    #: true when the message has more events than ``limit``
    truncated: bool


class RecipientActivity(msgspec.Struct, kw_only=True):
    """UTC days of the first and last delivery and of the last human open or click."""

    address: str
    first_delivered_on: date | None
    last_delivered_on: date | None
    last_engaged_on: date | None


class RecipientHistory(msgspec.Struct, kw_only=True):
    address: str
    suppressed: bool
    #: the suppression-list entry, as stored (null when the address is not suppressed)
    suppression: dict[str, Any] | None
    #: events per event type over every stored event of this recipient
    counts: dict[str, int]
    activity: RecipientActivity | None
    #: the latest events, newest first
    events: list[EventItem]


class InactivePage(msgspec.Struct, kw_only=True):
    items: list[RecipientActivity]
    next_cursor: str | None


class StatsDetails(msgspec.Struct, kw_only=True):
    hard_bounces: int
    soft_bounces: int
    undetermined_bounces: int
    machine_opens: int
    unique_opens: int
    unique_human_opens: int
    unique_clicks: int


class Rates(msgspec.Struct, kw_only=True):
    """Fractions in [0, 1] (rounded to 6 places); null when the denominator is zero."""

    delivery_rate: float | None
    unique_open_rate: float | None
    unique_open_rate_with_machine: float | None
    click_rate: float | None
    click_to_open_rate: float | None
    bounce_rate: float | None
    hard_bounce_rate: float | None
    soft_bounce_rate: float | None
    complaint_rate: float | None
    unsubscribe_rate: float | None


class StatsGroup(msgspec.Struct, kw_only=True):
    #: the provider, source, campaign, tag, day (YYYY-MM-DD) or hour (ISO 8601, UTC);
    #: null for events without a campaign
    key: str | None
    counts: dict[str, int]
    details: StatsDetails
    rates: Rates


class StatsReport(msgspec.Struct, kw_only=True):
    group_by: str
    since: datetime
    until: datetime
    groups: list[StatsGroup]


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, Any]] | None = None
