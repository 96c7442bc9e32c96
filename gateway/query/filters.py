"""The queries of the read endpoints, built from parameters already validated once.

The admin API declares each parameter once (``gateway/routes/admin_query.py``: the bounds,
patterns and enums below, which Litestar both documents in the OpenAPI document and
enforces, unknown and repeated names included). The builders here take those typed values
and do only what a schema cannot: turn a comma-separated choice into a tuple, a date, date-
time or relative age into a UTC datetime, a cursor token into its position, an address into
its canonical form, and check the rules between parameters (``since`` before ``until``,
``tag`` not with ``campaign``). A ``QueryError`` names the parameter and says why (the routes
turn it into a 400).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from gateway.query.cursor import EventCursor, decode_address_cursor
from gateway.query.errors import QueryError
from handlers.addresses import canonical_address
from handlers.events import EventType

__all__ = [
    "DEFAULT_EVENT_LIMIT",
    "DEFAULT_STATS_DAYS",
    "GROUP_BY",
    "MAX_EVENT_LIMIT",
    "MAX_STATS_LIMIT",
    "EventFilter",
    "InactiveQuery",
    "MessageQuery",
    "RecipientQuery",
    "StatsQuery",
    "choices_pattern",
    "event_filter",
    "inactive_query",
    "message_query",
    "one_of_pattern",
    "parse_time",
    "recipient_query",
    "stats_query",
]

DEFAULT_EVENT_LIMIT = 50
MAX_EVENT_LIMIT = 1000
DEFAULT_RECIPIENT_EVENTS = 100
DEFAULT_MESSAGE_EVENTS = 1000
MAX_MESSAGE_EVENTS = 10_000
DEFAULT_INACTIVE_LIMIT = 100
MAX_INACTIVE_DAYS = 36_500
DEFAULT_STATS_LIMIT = 1000
MAX_STATS_LIMIT = 10_000
DEFAULT_STATS_DAYS = 30
MAX_VALUE_LENGTH = 1024

GROUP_BY = ("provider", "source", "campaign", "tag", "day", "hour")
EVENT_TYPES = tuple(t.value for t in EventType)
MAX_REPEATS = 20
#: a relative age: up to 5 digits, so ``now`` minus it is always a representable date
RELATIVE_PATTERN = r"^[0-9]{1,5}[smhdw]$"
_RELATIVE = re.compile(r"^([0-9]{1,5})([smhdw])$")
#: RFC 3339 date-time (``2024-05-01T12:00:00Z``, ``...+02:00``; ``T`` or a space)
_DATE_TIME = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?$"
)
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
#: what the OpenAPI document says ``since`` / ``until`` are (``parse_time`` takes exactly these)
TIME_SCHEMA: dict[str, object] = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": RELATIVE_PATTERN},
    ]
}
#: text values: PostgreSQL-storable (no NUL) and bounded
TEXT_PATTERN = r"^[^\x00]*$"
METADATA_PATTERN = r"^[^\x00:]+:[^\x00]*$"


def choices_pattern(allowed: Sequence[str]) -> str:
    """A comma-separated list of ``allowed`` values, as a regular expression."""
    one = "(?:" + "|".join(re.escape(value) for value in allowed) + ")"
    return f"^{one}(?:,{one})*$"


def one_of_pattern(allowed: Sequence[str]) -> str:
    """Exactly one of ``allowed``, as a regular expression."""
    return "^(?:" + "|".join(re.escape(value) for value in allowed) + ")$"


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _choices(text: str | None) -> tuple[str, ...]:
    """The values of a comma-separated choice (its pattern, ``choices_pattern``, is checked
    where the parameter is declared), without repeats; empty when absent."""
    if text is None:
        return ()
    return tuple(dict.fromkeys(part.strip() for part in text.split(",")))


def parse_time(name: str, text: str, now: datetime) -> datetime:
    """An ISO 8601 date or date-time (naive means UTC), or a relative age like ``30d``,
    ``12h``, ``15m``, ``90s``, ``2w`` (that long before ``now``)."""
    text = text.strip()
    match = _RELATIVE.match(text)
    try:
        if match:
            amount, unit = match.groups()
            return now - timedelta(**{_UNITS[unit]: int(amount)})
        if _DATE.match(text):
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        if not _DATE_TIME.match(text):
            raise ValueError(text)
        value = datetime.fromisoformat(text.upper().replace(" ", "T"))
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        if value.year in (1, 9999):  # an offset may carry it beyond what datetime holds
            return _clamped_utc(value)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise QueryError(
            name,
            f"not a date/time: {text!r} (use ISO 8601, e.g. 2024-05-01 or "
            "2024-05-01T12:00:00Z, or a relative age like 30d, 12h)",
        ) from None


def _clamped_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if value.year == 1 else datetime.max
        return edge.replace(tzinfo=UTC)


def _window(
    since_text: str | None, until_text: str | None, now: datetime, default_since: datetime | None
) -> tuple[datetime | None, datetime | None]:
    since = parse_time("since", since_text, now) if since_text is not None else default_since
    until = parse_time("until", until_text, now) if until_text is not None else None
    if since is not None and until is not None and since >= until:
        raise QueryError("since", "must be before until")
    return since, until


@dataclass(frozen=True)
class EventFilter:
    """The filters of ``GET /v1/events``; every one given must match (AND)."""

    recipient: str | None = None
    message_id: str | None = None
    providers: tuple[str, ...] = ()
    source: str | None = None
    event_types: tuple[str, ...] = ()
    campaign: str | None = None
    tags: tuple[str, ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    include_raw: bool = False
    limit: int = DEFAULT_EVENT_LIMIT
    cursor: EventCursor | None = None


def _metadata(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for text in values:
        key, sep, value = text.partition(":")
        if not sep or not key:
            raise QueryError("metadata", f"expected key:value, got {text!r}")
        pairs.append((key, value))
    return tuple(pairs)


def event_filter(
    now: datetime,
    *,
    recipient: str | None = None,
    message_id: str | None = None,
    provider: str | None = None,
    source: str | None = None,
    event_type: str | None = None,
    campaign: str | None = None,
    tag: Sequence[str] | None = None,
    metadata: Sequence[str] | None = None,
    since: str | None = None,
    until: str | None = None,
    include: str | None = None,
    limit: int = DEFAULT_EVENT_LIMIT,
    cursor: str | None = None,
) -> EventFilter:
    """``GET /v1/events`` from its parameters (``provider``, ``event_type`` and ``include``
    are comma-separated choices; ``tag`` and ``metadata`` repeat)."""
    since_at, until_at = _window(since, until, now, None)
    return EventFilter(
        recipient=canonical_address(recipient),
        message_id=message_id,
        providers=_choices(provider),
        source=source,
        event_types=_choices(event_type),
        campaign=campaign,
        tags=tuple(dict.fromkeys(tag or ())),
        metadata=_metadata(metadata or ()),
        since=since_at,
        until=until_at,
        include_raw="raw" in _choices(include),
        limit=limit,
        cursor=EventCursor.decode(cursor) if cursor is not None else None,
    )


@dataclass(frozen=True)
class MessageQuery:
    provider: str | None = None
    include_raw: bool = False
    limit: int = DEFAULT_MESSAGE_EVENTS


def message_query(
    *, provider: str | None = None, include: str | None = None, limit: int = DEFAULT_MESSAGE_EVENTS
) -> MessageQuery:
    return MessageQuery(provider=provider, include_raw="raw" in _choices(include), limit=limit)


@dataclass(frozen=True)
class RecipientQuery:
    include_raw: bool = False
    limit: int = DEFAULT_RECIPIENT_EVENTS


def recipient_query(
    *, include: str | None = None, limit: int = DEFAULT_RECIPIENT_EVENTS
) -> RecipientQuery:
    return RecipientQuery(include_raw="raw" in _choices(include), limit=limit)


@dataclass(frozen=True)
class InactiveQuery:
    """Recipients first delivered to on or before ``cutoff`` (a UTC day, ``inactive_days``
    before today) with no human open or click on or after it."""

    inactive_days: int
    cutoff: date
    limit: int = DEFAULT_INACTIVE_LIMIT
    after: str | None = None


def inactive_query(
    now: datetime,
    *,
    inactive_days: int,
    limit: int = DEFAULT_INACTIVE_LIMIT,
    cursor: str | None = None,
) -> InactiveQuery:
    return InactiveQuery(
        inactive_days=inactive_days,
        cutoff=(now.astimezone(UTC) - timedelta(days=inactive_days)).date(),
        limit=limit,
        after=decode_address_cursor(cursor) if cursor is not None else None,
    )


@dataclass(frozen=True)
class StatsQuery:
    """``GET /v1/stats``: counts and rates from the hourly rollups, grouped one way."""

    group_by: str
    since: datetime
    until: datetime
    provider: str | None = None
    source: str | None = None
    campaign: str | None = None
    tag: str | None = None
    limit: int = DEFAULT_STATS_LIMIT


def stats_query(
    now: datetime,
    *,
    group_by: str = "provider",
    since: str | None = None,
    until: str | None = None,
    provider: str | None = None,
    source: str | None = None,
    campaign: str | None = None,
    tag: str | None = None,
    limit: int = DEFAULT_STATS_LIMIT,
) -> StatsQuery:
    """``GET /v1/stats``: ``since`` defaults to 30 days ago, ``until`` to now; a tag's
    rollups span campaigns, so ``tag`` (or grouping by it) excludes ``campaign``."""
    since_at, until_at = _window(since, until, now, now - timedelta(days=DEFAULT_STATS_DAYS))
    assert since_at is not None
    until_at = until_at if until_at is not None else now
    if since_at >= until_at:
        raise QueryError("since", "must be before until")
    by_tag = group_by == "tag" or tag is not None
    if by_tag and (group_by == "campaign" or campaign is not None):
        raise QueryError("tag", "cannot be combined with campaign (tag rollups span campaigns)")
    return StatsQuery(
        group_by=group_by,
        since=since_at,
        until=until_at,
        provider=provider,
        source=source,
        campaign=campaign,
        tag=tag,
        limit=limit,
    )
