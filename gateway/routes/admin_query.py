"""The read side of the admin API (``/v1``, bearer token): event search, message timeline,
recipient history, inactive recipients and deliverability stats.

Each operation's query parameters are declared ONCE, as the signature of its query provider
(``event_filter_query`` and the others below) with the bounds ``gateway.query.filters`` and
``gateway.query.cursor`` define (lengths, patterns, enums, ranges). That one declaration
serves both views: Litestar documents it in the OpenAPI document (/schema/openapi.json) and
validates the request against it (400 problem+json naming the parameter), and the guard
``require_readable_input`` refuses any name it does not list (``declared_query_parameters``). The
provider hands the validated values to the builders of ``gateway.query.filters``, which only
convert them and check the rules between parameters; the handler receives the finished query
as the dependency ``read_query``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import msgspec
import structlog
from litestar import Router, get
from litestar.di import NamedDependency, Provide
from litestar.params import Parameter

from gateway.errors import DATABASE_UNAVAILABLE, ProblemError
from gateway.query.cursor import (
    ADDRESS_CURSOR_PATTERN,
    EVENT_CURSOR_PATTERN,
    MAX_CURSOR_LENGTH,
)
from gateway.query.errors import QueryError
from gateway.query.filters import (
    DEFAULT_EVENT_LIMIT,
    DEFAULT_INACTIVE_LIMIT,
    DEFAULT_MESSAGE_EVENTS,
    DEFAULT_RECIPIENT_EVENTS,
    DEFAULT_STATS_LIMIT,
    EVENT_TYPES,
    GROUP_BY,
    MAX_EVENT_LIMIT,
    MAX_INACTIVE_DAYS,
    MAX_MESSAGE_EVENTS,
    MAX_REPEATS,
    MAX_STATS_LIMIT,
    MAX_VALUE_LENGTH,
    METADATA_PATTERN,
    TEXT_PATTERN,
    TIME_SCHEMA,
    EventFilter,
    InactiveQuery,
    MessageQuery,
    RecipientQuery,
    StatsQuery,
    choices_pattern,
    event_filter,
    inactive_query,
    message_query,
    one_of_pattern,
    recipient_query,
    stats_query,
)
from gateway.query.models import (
    EventPage,
    InactivePage,
    MessageTimeline,
    RecipientHistory,
    StatsReport,
)
from gateway.query.reads import ReadService
from gateway.routes.admin_auth import require_admin_token
from gateway.routes.admin_input import require_readable_input
from gateway.routes.admin_openapi import ADMIN_SECURITY, error_responses
from gateway.server.body_deadline import body_deadline_middleware
from handlers.registry import PROVIDERS

__all__ = ["query_router"]

log = structlog.get_logger("hookline.admin.query")

T = TypeVar("T")

_RESPONSES = error_responses()
_TIME_HELP = "ISO 8601 date or date-time (UTC when no offset), or a relative age: 30d, 12h, 15m"


def _text(description: str | None = None) -> Any:
    """An optional text filter: non-empty, bounded, no NUL (``TEXT_PATTERN``)."""
    return Parameter(
        default=None,
        description=description,
        min_length=1,
        max_length=MAX_VALUE_LENGTH,
        pattern=TEXT_PATTERN,
    )


def _choices(allowed: tuple[str, ...], description: str) -> Any:
    """An optional comma-separated list of ``allowed`` values."""
    return Parameter(
        default=None,
        description=f"{description} ({', '.join(allowed)})",
        max_length=MAX_VALUE_LENGTH,
        pattern=choices_pattern(allowed),
    )


def _one_of(allowed: tuple[str, ...], description: str | None = None) -> Any:
    """An optional single value of ``allowed`` (documented as an enum, enforced as a pattern)."""
    return Parameter(
        default=None,
        description=description,
        pattern=one_of_pattern(allowed),
        schema_extra={"enum": list(allowed)},
    )


def _time(description: str) -> Any:
    return Parameter(
        default=None,
        description=f"{description}; {_TIME_HELP}",
        max_length=64,
        schema_extra=TIME_SCHEMA,
    )


def _cursor(pattern: str) -> Any:
    return Parameter(
        default=None,
        description="next_cursor of the previous page",
        max_length=MAX_CURSOR_LENGTH,
        pattern=pattern,
    )


_INCLUDE = _choices(("raw",), "'raw' adds the ESP's event")
#: one ``tag`` or ``metadata`` value (the ``items`` of the documented array, enforced per item)
_Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_VALUE_LENGTH, pattern=TEXT_PATTERN)]
_Metadata = Annotated[str, msgspec.Meta(max_length=MAX_VALUE_LENGTH, pattern=METADATA_PATTERN)]
_TAG = Parameter(
    default=None,
    description="repeatable; all must match",
    max_items=MAX_REPEATS,
    schema_extra={
        "items": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_VALUE_LENGTH,
            "pattern": TEXT_PATTERN,
        }
    },
)
_METADATA = Parameter(
    default=None,
    description="key:value, repeatable; all must match",
    max_items=MAX_REPEATS,
    schema_extra={
        "items": {"type": "string", "maxLength": MAX_VALUE_LENGTH, "pattern": METADATA_PATTERN}
    },
)
#: path segments: a message id or an address as stored (bounded, no NUL)
_PATH_TEXT = Parameter(min_length=1, max_length=MAX_VALUE_LENGTH, pattern=TEXT_PATTERN)


def _parse(parse: Callable[[], T]) -> T:
    try:
        return parse()
    except QueryError as exc:
        raise ProblemError(400, "Bad Request", str(exc)) from None


async def _read(call: Awaitable[T]) -> T:
    try:
        return await call
    except DATABASE_UNAVAILABLE as exc:
        log.warning("admin.query_unavailable", error=type(exc).__name__)
        raise ProblemError(
            503,
            "Service Unavailable",
            "the database is unavailable, retry later",
            headers={"Retry-After": "5"},
        ) from None


# -- the query parameters of each operation, declared once -------------------------------


def event_filter_query(
    recipient: str | None = _text("recipient address, case-insensitive"),
    message_id: str | None = _text("the ESP's message id"),
    provider: str | None = _choices(PROVIDERS, "provider(s), comma-separated"),
    source: str | None = _text("source name"),
    event_type: str | None = _choices(EVENT_TYPES, "event type(s), comma-separated"),
    campaign: str | None = _text(),
    tag: list[_Tag] | None = _TAG,
    metadata: list[_Metadata] | None = _METADATA,
    since: str | None = _time("occurred at or after; before until"),
    until: str | None = _time("occurred before"),
    include: str | None = _INCLUDE,
    limit: int = Parameter(default=DEFAULT_EVENT_LIMIT, ge=1, le=MAX_EVENT_LIMIT),
    cursor: str | None = _cursor(EVENT_CURSOR_PATTERN),
) -> EventFilter:
    return _parse(
        lambda: event_filter(
            datetime.now(UTC),
            recipient=recipient,
            message_id=message_id,
            provider=provider,
            source=source,
            event_type=event_type,
            campaign=campaign,
            tag=tag,
            metadata=metadata,
            since=since,
            until=until,
            include=include,
            limit=limit,
            cursor=cursor,
        )
    )


def message_query_parameters(
    provider: str | None = _one_of(PROVIDERS, "only this provider's events"),
    include: str | None = _INCLUDE,
    limit: int = Parameter(default=DEFAULT_MESSAGE_EVENTS, ge=1, le=MAX_MESSAGE_EVENTS),
) -> MessageQuery:
    return message_query(provider=provider, include=include, limit=limit)


def recipient_query_parameters(
    include: str | None = _INCLUDE,
    limit: int = Parameter(default=DEFAULT_RECIPIENT_EVENTS, ge=1, le=MAX_EVENT_LIMIT),
) -> RecipientQuery:
    return recipient_query(include=include, limit=limit)


def inactive_query_parameters(
    inactive_days: int = Parameter(ge=1, le=MAX_INACTIVE_DAYS),
    limit: int = Parameter(default=DEFAULT_INACTIVE_LIMIT, ge=1, le=MAX_EVENT_LIMIT),
    cursor: str | None = _cursor(ADDRESS_CURSOR_PATTERN),
) -> InactiveQuery:
    return _parse(
        lambda: inactive_query(
            datetime.now(UTC), inactive_days=inactive_days, limit=limit, cursor=cursor
        )
    )


def stats_query_parameters(
    group_by: str = Parameter(
        default="provider",
        description="tag cannot be combined with campaign",
        pattern=one_of_pattern(GROUP_BY),
        schema_extra={"enum": list(GROUP_BY)},
    ),
    since: str | None = _time("default 30d; before until"),
    until: str | None = _time("default now"),
    provider: str | None = _one_of(PROVIDERS),
    source: str | None = _text(),
    campaign: str | None = _text("not with tag (tag rollups span campaigns)"),
    tag: str | None = _text("not with campaign"),
    limit: int = Parameter(default=DEFAULT_STATS_LIMIT, ge=1, le=MAX_STATS_LIMIT),
) -> StatsQuery:
    return _parse(
        lambda: stats_query(
            datetime.now(UTC),
            group_by=group_by,
            since=since,
            until=until,
            provider=provider,
            source=source,
            campaign=campaign,
            tag=tag,
            limit=limit,
        )
    )


def _query(provider: Callable[..., Any]) -> dict[str, Any]:
    """The keyword arguments that hand ``provider``'s result to a handler as ``read_query``
    (the input guard reads the query names it accepts from the provider's signature)."""
    return {"dependencies": {"read_query": Provide(provider, sync_to_thread=False)}}


# -- the operations ------------------------------------------------------------------------


@get(
    "/events",
    summary="Search events",
    description="Stored events matching every given filter, newest first (keyset pages).",
    operation_id="searchEvents",
    tags=["query"],
    responses=_RESPONSES,
    **_query(event_filter_query),
)
async def search_events(
    reads: NamedDependency[ReadService], read_query: NamedDependency[EventFilter]
) -> EventPage:
    return await _read(reads.search_events(read_query))


@get(
    "/messages/{message_id:str}",
    summary="Message timeline",
    description="Every event of one message in time order, and each recipient's furthest state.",
    operation_id="getMessage",
    tags=["query"],
    responses=error_responses(s404="No event has this message id"),
    **_query(message_query_parameters),
)
async def get_message(
    reads: NamedDependency[ReadService],
    read_query: NamedDependency[MessageQuery],
    message_id: Annotated[str, _PATH_TEXT],
) -> MessageTimeline:
    timeline = await _read(reads.message(message_id, read_query))
    if timeline is None:
        raise ProblemError(404, "Not Found", "no stored event has this message id")
    return timeline


@get(
    "/recipients/{address:str}",
    summary="Recipient history",
    description="The latest events of one address, counts per event type, its activity and "
    "its suppression-list entry.",
    operation_id="getRecipient",
    tags=["query"],
    responses=_RESPONSES,
    **_query(recipient_query_parameters),
)
async def get_recipient(
    reads: NamedDependency[ReadService],
    read_query: NamedDependency[RecipientQuery],
    address: Annotated[str, _PATH_TEXT],
) -> RecipientHistory:
    return await _read(reads.recipient(address, read_query))


@get(
    "/recipients",
    summary="Inactive recipients",
    description="Recipients first delivered to at least inactive_days ago with no human open "
    "or click since (re-engagement), ordered by address.",
    operation_id="listInactiveRecipients",
    tags=["query"],
    responses=_RESPONSES,
    **_query(inactive_query_parameters),
)
async def list_inactive_recipients(
    reads: NamedDependency[ReadService], read_query: NamedDependency[InactiveQuery]
) -> InactivePage:
    return await _read(reads.inactive(read_query))


@get(
    "/stats",
    summary="Deliverability stats",
    description="Counts per event type and the KPIs (delivery, unique open, click, "
    "click-to-open, bounce, complaint and unsubscribe rates) from the hourly rollups.",
    operation_id="getStats",
    tags=["query"],
    responses=_RESPONSES,
    **_query(stats_query_parameters),
)
async def get_stats(
    reads: NamedDependency[ReadService], read_query: NamedDependency[StatsQuery]
) -> StatsReport:
    return await _read(reads.stats(read_query))


query_router = Router(
    path="/v1",
    route_handlers=[
        search_events,
        get_message,
        get_recipient,
        list_inactive_recipients,
        get_stats,
    ],
    guards=[require_admin_token, require_readable_input],
    middleware=[body_deadline_middleware],
    security=ADMIN_SECURITY,
)
