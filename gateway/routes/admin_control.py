"""``GET /v1/control-messages``: non-event messages from ESPs (SNS subscription and
unsubscribe confirmations), so operators can see and confirm subscriptions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import asyncpg
import msgspec
from litestar import Router, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from gateway.routes.admin_auth import require_admin_token
from gateway.routes.admin_input import require_readable_input
from gateway.routes.admin_openapi import ADMIN_SECURITY, MAX_ID, error_responses
from gateway.server.body_deadline import body_deadline_middleware

__all__ = ["control_router"]


class ControlMessageItem(msgspec.Struct):
    id: int
    provider: str
    source: str
    kind: str
    detail: dict[str, Any]
    confirm_url: str | None
    received_at: datetime
    confirmed_at: datetime | None
    confirm_error: str | None


class ControlMessagePage(msgspec.Struct):
    items: list[ControlMessageItem]
    next_cursor: str | None


@get(
    "/control-messages",
    summary="List ESP control messages (SNS subscription confirmations)",
    responses=error_responses(),
)
async def list_control_messages(
    pool: NamedDependency[asyncpg.Pool],
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    cursor: Annotated[int | None, Parameter(ge=1, le=MAX_ID)] = None,
) -> ControlMessagePage:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT id, provider, source, kind, detail, confirm_url, received_at,
                      confirmed_at, confirm_error
               FROM control_messages WHERE ($1::bigint IS NULL OR id < $1)
               ORDER BY id DESC LIMIT $2""",
            cursor,
            limit + 1,
        )
    items = [
        ControlMessageItem(
            **{**dict(row), "detail": msgspec.json.decode(row["detail"])}  # jsonb as text
        )
        for row in rows[:limit]
    ]
    next_cursor = str(items[-1].id) if len(rows) > limit else None
    return ControlMessagePage(items=items, next_cursor=next_cursor)


control_router = Router(
    path="/v1",
    route_handlers=[list_control_messages],
    guards=[require_admin_token, require_readable_input],
    middleware=[body_deadline_middleware],
    tags=["admin"],
    security=ADMIN_SECURITY,
)
