"""The read side of the admin API (``/v1``, bearer token): event search, message timeline,
recipient history, inactive recipients and deliverability stats.

Every parameter is declared on its handler with the bounds ``gateway.query.filters`` and
``gateway.query.cursor`` define (lengths, patterns, enums, ranges), so the OpenAPI document
(/schema/openapi.json) states exactly what is accepted and Litestar rejects what breaks a
declared bound; ``gateway.query.filters`` then parses the raw multi-dict with the same
constants and checks what a schema cannot say (unknown or repeated parameters, since before
until, tag with campaign). Every rejection is a 400 problem+json naming the parameter.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import structlog
from litestar import Request, Router, get
from litestar.di import NamedDependency
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
    Params,
    check_value,
    choices_pattern,
    parse_event_filter,
    parse_inactive_query,
    parse_message_query,
    parse_recipient_query,
    parse_stats_query,
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
    """An optional text filter: non-empty, bounded, no NUL (as ``check_value`` requires)."""
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
    return Parameter(default=None, description=description, schema_extra={"enum": list(allowed)})


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


def _params(request: Request[Any, Any, Any]) -> Params:
    query = request.query_params
    return {name: query.getall(name) for name in query}


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


@get(
    "/events",
    summary="Search events",
    description="Stored events matching every given filter, newest first (keyset pages).",
    operation_id="searchEvents",
    tags=["query"],
    responses=_RESPONSES,
)
async def search_events(
    request: Request[Any, Any, Any],
    reads: NamedDependency[ReadService],
    recipient: str | None = _text("recipient address, case-insensitive"),
    message_id: str | None = _text("the ESP's message id"),
    provider: str | None = _choices(PROVIDERS, "provider(s), comma-separated"),
    source: str | None = _text("source name"),
    event_type: str | None = _choices(EVENT_TYPES, "event type(s), comma-separated"),
    campaign: str | None = _text(),
    tag: list[str] | None = _TAG,
    metadata: list[str] | None = _METADATA,
    since: str | None = _time("occurred at or after; before until"),
    until: str | None = _time("occurred before"),
    include: str | None = _INCLUDE,
    limit: int = Parameter(default=DEFAULT_EVENT_LIMIT, ge=1, le=MAX_EVENT_LIMIT),
    cursor: str | None = _cursor(EVENT_CURSOR_PATTERN),
) -> EventPage:
    now = datetime.now(UTC)
    query = _parse(lambda: parse_event_filter(_params(request), now))
    return await _read(reads.search_events(query))


@get(
    "/messages/{message_id:str}",
    summary="Message timeline",
    description="Every event of one message in time order, and each recipient's furthest state.",
    operation_id="getMessage",
    tags=["query"],
    responses=error_responses(s404="No event has this message id"),
)
async def get_message(
    request: Request[Any, Any, Any],
    reads: NamedDependency[ReadService],
    message_id: Annotated[str, _PATH_TEXT],
    provider: str | None = _one_of(PROVIDERS, "only this provider's events"),
    include: str | None = _INCLUDE,
    limit: int = Parameter(default=1000, ge=1, le=MAX_MESSAGE_EVENTS),
) -> MessageTimeline:
    message_id = _parse(lambda: check_value("message_id", message_id))
    query = _parse(lambda: parse_message_query(_params(request)))
    timeline = await _read(reads.message(message_id, query))
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
)
async def get_recipient(
    request: Request[Any, Any, Any],
    reads: NamedDependency[ReadService],
    address: Annotated[str, _PATH_TEXT],
    include: str | None = _INCLUDE,
    limit: int = Parameter(default=100, ge=1, le=MAX_EVENT_LIMIT),
) -> RecipientHistory:
    address = _parse(lambda: check_value("address", address))
    query = _parse(lambda: parse_recipient_query(_params(request)))
    return await _read(reads.recipient(address, query))


@get(
    "/recipients",
    summary="Inactive recipients",
    description="Recipients first delivered to at least inactive_days ago with no human open "
    "or click since (re-engagement), ordered by address.",
    operation_id="listInactiveRecipients",
    tags=["query"],
    responses=_RESPONSES,
)
async def list_inactive_recipients(
    request: Request[Any, Any, Any],
    reads: NamedDependency[ReadService],
    inactive_days: int = Parameter(ge=1, le=MAX_INACTIVE_DAYS),
    limit: int = Parameter(default=100, ge=1, le=MAX_EVENT_LIMIT),
    cursor: str | None = _cursor(ADDRESS_CURSOR_PATTERN),
) -> InactivePage:
    now = datetime.now(UTC)
    query = _parse(lambda: parse_inactive_query(_params(request), now))
    return await _read(reads.inactive(query))


@get(
    "/stats",
    summary="Deliverability stats",
    description="Counts per event type and the KPIs (delivery, unique open, click, "
    "click-to-open, bounce, complaint and unsubscribe rates) from the hourly rollups.",
    operation_id="getStats",
    tags=["query"],
    responses=_RESPONSES,
)
async def get_stats(
    request: Request[Any, Any, Any],
    reads: NamedDependency[ReadService],
    group_by: str = Parameter(
        default="provider",
        description="tag cannot be combined with campaign",
        schema_extra={"enum": list(GROUP_BY)},
    ),
    since: str | None = _time("default 30d; before until"),
    until: str | None = _time("default now"),
    provider: str | None = _one_of(PROVIDERS),
    source: str | None = _text(),
    campaign: str | None = _text("not with tag (tag rollups span campaigns)"),
    tag: str | None = _text("not with campaign"),
    limit: int = Parameter(default=1000, ge=1, le=MAX_STATS_LIMIT),
) -> StatsReport:
    now = datetime.now(UTC)
    query = _parse(lambda: parse_stats_query(_params(request), now))
    return await _read(reads.stats(query))


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
