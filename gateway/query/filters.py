"""Query-string parsing and validation for the read endpoints.

Every endpoint takes its parameters as a multi-dict (``name -> [values]``) so unknown names,
repeated single-valued names, malformed dates and oversized limits are all rejected here,
with a ``QueryError`` that names the parameter and says why (the routes turn it into 400).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from gateway.query.cursor import EventCursor, decode_address_cursor
from gateway.query.errors import QueryError
from handlers.addresses import canonical_address
from handlers.events import EventType
from handlers.registry import PROVIDERS

__all__ = [
    "DEFAULT_EVENT_LIMIT",
    "DEFAULT_STATS_DAYS",
    "EVENT_PARAMETERS",
    "GROUP_BY",
    "INACTIVE_PARAMETERS",
    "MAX_EVENT_LIMIT",
    "MAX_STATS_LIMIT",
    "MESSAGE_PARAMETERS",
    "RECIPIENT_PARAMETERS",
    "STATS_PARAMETERS",
    "EventFilter",
    "InactiveQuery",
    "MessageQuery",
    "Params",
    "RecipientQuery",
    "StatsQuery",
    "check_value",
    "choices_pattern",
    "parse_event_filter",
    "parse_inactive_query",
    "parse_message_query",
    "parse_recipient_query",
    "parse_stats_query",
    "parse_time",
]

#: the raw query string: every name with all its values
Params = Mapping[str, Sequence[str]]

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
EVENT_PARAMETERS = frozenset(
    {
        "recipient",
        "message_id",
        "provider",
        "source",
        "event_type",
        "campaign",
        "tag",
        "metadata",
        "since",
        "until",
        "include",
        "limit",
        "cursor",
    }
)
MESSAGE_PARAMETERS = frozenset({"provider", "include", "limit"})
RECIPIENT_PARAMETERS = frozenset({"include", "limit"})
INACTIVE_PARAMETERS = frozenset({"inactive_days", "limit", "cursor"})
STATS_PARAMETERS = frozenset(
    {"group_by", "since", "until", "provider", "source", "campaign", "tag", "limit"}
)
_REPEATABLE = frozenset({"tag", "metadata"})
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


_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def check_value(name: str, value: str) -> str:
    """A usable text value: non-empty, bounded, storable in PostgreSQL text."""
    if not value:
        raise QueryError(name, "must not be empty")
    if len(value) > MAX_VALUE_LENGTH:
        raise QueryError(name, f"longer than {MAX_VALUE_LENGTH} characters")
    if "\x00" in value:
        raise QueryError(name, "contains a NUL character")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise QueryError(name, "is not valid UTF-8") from None
    return value


def _check_known(params: Params, allowed: frozenset[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise QueryError(unknown[0], f"unknown parameter (allowed: {', '.join(sorted(allowed))})")
    for name, values in params.items():
        if len(values) > 1 and name not in _REPEATABLE:
            raise QueryError(name, "given more than once")
        if len(values) > MAX_REPEATS:
            raise QueryError(name, f"given more than {MAX_REPEATS} times")


def _one(params: Params, name: str) -> str | None:
    values = params.get(name)
    return check_value(name, values[0]) if values else None


def _all(params: Params, name: str) -> list[str]:
    return [check_value(name, value) for value in params.get(name, ())]


def _choices(params: Params, name: str, allowed: Sequence[str]) -> tuple[str, ...]:
    """A comma-separated list of values from ``allowed`` (empty when absent)."""
    text = _one(params, name)
    if text is None:
        return ()
    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
    for value in chosen:
        if value not in allowed:
            raise QueryError(name, f"unknown value {value!r} (allowed: {', '.join(allowed)})")
    return chosen


def _int(params: Params, name: str, default: int, minimum: int, maximum: int) -> int:
    text = _one(params, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise QueryError(name, f"not an integer: {text!r}") from None
    if not minimum <= value <= maximum:
        raise QueryError(name, f"must be between {minimum} and {maximum}, got {value}")
    return value


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
    params: Params, now: datetime, default_since: datetime | None
) -> tuple[datetime | None, datetime | None]:
    since_text, until_text = _one(params, "since"), _one(params, "until")
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


def parse_event_filter(params: Params, now: datetime) -> EventFilter:
    _check_known(params, EVENT_PARAMETERS)
    since, until = _window(params, now, None)
    cursor_text = _one(params, "cursor")
    include = _choices(params, "include", ("raw",))
    return EventFilter(
        recipient=canonical_address(_one(params, "recipient")),
        message_id=_one(params, "message_id"),
        providers=_choices(params, "provider", PROVIDERS),
        source=_one(params, "source"),
        event_types=_choices(params, "event_type", EVENT_TYPES),
        campaign=_one(params, "campaign"),
        tags=tuple(dict.fromkeys(_all(params, "tag"))),
        metadata=_metadata(_all(params, "metadata")),
        since=since,
        until=until,
        include_raw="raw" in include,
        limit=_int(params, "limit", DEFAULT_EVENT_LIMIT, 1, MAX_EVENT_LIMIT),
        cursor=EventCursor.decode(cursor_text) if cursor_text is not None else None,
    )


@dataclass(frozen=True)
class MessageQuery:
    provider: str | None = None
    include_raw: bool = False
    limit: int = DEFAULT_MESSAGE_EVENTS


def parse_message_query(params: Params) -> MessageQuery:
    _check_known(params, MESSAGE_PARAMETERS)
    provider = _one(params, "provider")
    if provider is not None and provider not in PROVIDERS:
        raise QueryError("provider", f"unknown provider {provider!r}")
    return MessageQuery(
        provider=provider,
        include_raw="raw" in _choices(params, "include", ("raw",)),
        limit=_int(params, "limit", DEFAULT_MESSAGE_EVENTS, 1, MAX_MESSAGE_EVENTS),
    )


@dataclass(frozen=True)
class RecipientQuery:
    include_raw: bool = False
    limit: int = DEFAULT_RECIPIENT_EVENTS


def parse_recipient_query(params: Params) -> RecipientQuery:
    _check_known(params, RECIPIENT_PARAMETERS)
    return RecipientQuery(
        include_raw="raw" in _choices(params, "include", ("raw",)),
        limit=_int(params, "limit", DEFAULT_RECIPIENT_EVENTS, 1, MAX_EVENT_LIMIT),
    )


@dataclass(frozen=True)
class InactiveQuery:
    """Recipients first delivered to on or before ``cutoff`` (a UTC day, ``inactive_days``
    before today) with no human open or click on or after it."""

    inactive_days: int
    cutoff: date
    limit: int = DEFAULT_INACTIVE_LIMIT
    after: str | None = None


def parse_inactive_query(params: Params, now: datetime) -> InactiveQuery:
    _check_known(params, INACTIVE_PARAMETERS)
    if not params.get("inactive_days"):
        raise QueryError("inactive_days", "required (e.g. inactive_days=60)")
    days = _int(params, "inactive_days", 0, 1, MAX_INACTIVE_DAYS)
    cursor_text = _one(params, "cursor")
    return InactiveQuery(
        inactive_days=days,
        cutoff=(now.astimezone(UTC) - timedelta(days=days)).date(),
        limit=_int(params, "limit", DEFAULT_INACTIVE_LIMIT, 1, MAX_EVENT_LIMIT),
        after=decode_address_cursor(cursor_text) if cursor_text is not None else None,
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


def parse_stats_query(params: Params, now: datetime) -> StatsQuery:
    _check_known(params, STATS_PARAMETERS)
    group_by = _choices(params, "group_by", GROUP_BY)
    if len(group_by) > 1:
        raise QueryError("group_by", "give exactly one grouping")
    since, until = _window(params, now, now - timedelta(days=DEFAULT_STATS_DAYS))
    assert since is not None
    until = until if until is not None else now
    if since >= until:
        raise QueryError("since", "must be before until")
    provider = _one(params, "provider")
    if provider is not None and provider not in PROVIDERS:
        raise QueryError("provider", f"unknown provider {provider!r}")
    tags = _all(params, "tag")
    if len(tags) > 1:
        raise QueryError("tag", "given more than once")
    by_tag = group_by == ("tag",) or bool(tags)
    if by_tag and (group_by == ("campaign",) or params.get("campaign")):
        raise QueryError("tag", "cannot be combined with campaign (tag rollups span campaigns)")
    return StatsQuery(
        group_by=group_by[0] if group_by else "provider",
        since=since,
        until=until,
        provider=provider,
        source=_one(params, "source"),
        campaign=_one(params, "campaign"),
        tag=tags[0] if tags else None,
        limit=_int(params, "limit", DEFAULT_STATS_LIMIT, 1, MAX_STATS_LIMIT),
    )
