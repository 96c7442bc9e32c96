"""The read side of the admin API (``/v1``, bearer token): event search, message timeline,
recipient history, inactive recipients and deliverability stats.

Query strings are validated by ``gateway.query.filters`` from the raw multi-dict, so unknown
parameters, repeated single-valued ones, malformed dates and oversized limits are 400
problem+json naming the parameter. The parameters are also declared on each handler so the
OpenAPI document (/schema/openapi.json) describes them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import structlog
from litestar import Request, Router, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, Parameter

from gateway.errors import ProblemError
from gateway.query.errors import QueryError
from gateway.query.filters import (
    DEFAULT_EVENT_LIMIT,
    MAX_EVENT_LIMIT,
    MAX_INACTIVE_DAYS,
    MAX_MESSAGE_EVENTS,
    MAX_STATS_LIMIT,
    Params,
    check_value,
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
    Problem,
    RecipientHistory,
    StatsReport,
)
from gateway.query.reads import ReadService
from gateway.routes.admin_auth import require_admin_token
from gateway.runtime import Runtime

__all__ = ["query_router"]

log = structlog.get_logger("hookline.admin.query")

T = TypeVar("T")

_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)


def _problem(description: str) -> ResponseSpec:
    return ResponseSpec(
        data_container=Problem,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


_RESPONSES: dict[int, ResponseSpec] = {
    400: _problem("Bad input: unknown parameter, malformed date or cursor, limit out of range"),
    401: _problem("Missing or wrong admin bearer token"),
    503: _problem("The database is unavailable"),
}
_TAG = Parameter(default=None, description="repeatable; all must match")
_METADATA = Parameter(default=None, description="key:value, repeatable; all must match")
_TIME_HELP = "ISO 8601 date or date-time (UTC when no offset), or a relative age: 30d, 12h, 15m"


def _params(request: Request[Any, Any, Any]) -> Params:
    query = request.query_params
    return {name: query.getall(name) for name in query}


def _service(request: Request[Any, Any, Any]) -> ReadService:
    runtime: Runtime = request.app.state.runtime
    return ReadService(runtime.database.pool)


def _parse(parse: Callable[[], T]) -> T:
    try:
        return parse()
    except QueryError as exc:
        raise ProblemError(400, "Bad Request", str(exc)) from None


async def _read(call: Awaitable[T]) -> T:
    try:
        return await call
    except _UNAVAILABLE as exc:
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
    recipient: str | None = Parameter(
        default=None, description="recipient address, case-insensitive"
    ),
    message_id: str | None = Parameter(default=None, description="the ESP's message id"),
    provider: str | None = Parameter(default=None, description="provider(s), comma-separated"),
    source: str | None = Parameter(default=None, description="source name"),
    event_type: str | None = Parameter(
        default=None, description="event type(s), comma-separated (delivered,bounced)"
    ),
    campaign: str | None = Parameter(default=None),
    tag: list[str] | None = _TAG,
    metadata: list[str] | None = _METADATA,
    since: str | None = Parameter(default=None, description=f"occurred at or after; {_TIME_HELP}"),
    until: str | None = Parameter(default=None, description=f"occurred before; {_TIME_HELP}"),
    include: str | None = Parameter(default=None, description="'raw' adds the ESP's event"),
    limit: int = Parameter(default=DEFAULT_EVENT_LIMIT, ge=1, le=MAX_EVENT_LIMIT),
    cursor: str | None = Parameter(default=None, description="next_cursor of the previous page"),
) -> EventPage:
    now = datetime.now(UTC)
    query = _parse(lambda: parse_event_filter(_params(request), now))
    return await _read(_service(request).search_events(query))


@get(
    "/messages/{message_id:str}",
    summary="Message timeline",
    description="Every event of one message in time order, and each recipient's furthest state.",
    operation_id="getMessage",
    tags=["query"],
    responses={**_RESPONSES, 404: _problem("No event has this message id")},
)
async def get_message(
    request: Request[Any, Any, Any],
    message_id: FromPath[str],
    provider: str | None = Parameter(default=None, description="only this provider's events"),
    include: str | None = Parameter(default=None, description="'raw' adds the ESP's event"),
    limit: int = Parameter(default=1000, ge=1, le=MAX_MESSAGE_EVENTS),
) -> MessageTimeline:
    message_id = _parse(lambda: check_value("message_id", message_id))
    query = _parse(lambda: parse_message_query(_params(request)))
    timeline = await _read(_service(request).message(message_id, query))
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
    address: FromPath[str],
    include: str | None = Parameter(default=None, description="'raw' adds the ESP's event"),
    limit: int = Parameter(default=100, ge=1, le=MAX_EVENT_LIMIT),
) -> RecipientHistory:
    address = _parse(lambda: check_value("address", address))
    query = _parse(lambda: parse_recipient_query(_params(request)))
    return await _read(_service(request).recipient(address, query))


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
    inactive_days: int = Parameter(ge=1, le=MAX_INACTIVE_DAYS),
    limit: int = Parameter(default=100, ge=1, le=MAX_EVENT_LIMIT),
    cursor: str | None = Parameter(default=None, description="next_cursor of the previous page"),
) -> InactivePage:
    now = datetime.now(UTC)
    query = _parse(lambda: parse_inactive_query(_params(request), now))
    return await _read(_service(request).inactive(query))


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
    group_by: str = Parameter(
        default="provider", description="provider | source | campaign | tag | day | hour"
    ),
    since: str | None = Parameter(default=None, description=f"default 30d; {_TIME_HELP}"),
    until: str | None = Parameter(default=None, description=f"default now; {_TIME_HELP}"),
    provider: str | None = Parameter(default=None),
    source: str | None = Parameter(default=None),
    campaign: str | None = Parameter(default=None),
    tag: str | None = Parameter(default=None),
    limit: int = Parameter(default=1000, ge=1, le=MAX_STATS_LIMIT),
) -> StatsReport:
    now = datetime.now(UTC)
    query = _parse(lambda: parse_stats_query(_params(request), now))
    return await _read(_service(request).stats(query))


query_router = Router(
    path="/v1",
    route_handlers=[
        search_events,
        get_message,
        get_recipient,
        list_inactive_recipients,
        get_stats,
    ],
    guards=[require_admin_token],
)
