"""Admin API: the quarantine (``/v1/quarantine``), behind the admin bearer token.

* ``GET /v1/quarantine?provider=&source=&stage=&limit=&cursor=``: records, newest first
* ``GET /v1/quarantine/{id}``: one record, with its raw item and kept event
* ``POST /v1/quarantine/{id}/replay``: store it again once the cause is fixed
* ``DELETE /v1/quarantine/{id}``: discard a record

Ids are 64-bit: a path id of digits outside 1..2**63-1 is a 404 like any id that does not
exist; anything that is not up to 19 digits is refused as input (400), as the document says.
"""

from __future__ import annotations

from typing import Annotated, Literal

import asyncpg
import msgspec
import structlog
from litestar import Router, delete, get, post
from litestar.di import NamedDependency
from litestar.params import Parameter

from gateway.errors import ProblemError
from gateway.ingest.isolation import IsolatingWriter
from gateway.ingest.quarantine_replay import ReplayFailedError, replay_entry
from gateway.resilience import CircuitOpenError
from gateway.routes.admin_auth import require_admin_token
from gateway.routes.admin_input import require_readable_input
from gateway.routes.admin_openapi import ADMIN_SECURITY, NO_NUL, error_responses
from gateway.server.body_deadline import body_deadline_middleware
from gateway.settings import Settings
from gateway.sources import SourceTable
from gateway.storage.quarantine import QuarantineEntry, QuarantineStore

__all__ = ["quarantine_router"]

log = structlog.get_logger("hookline.admin")

_MAX_ID = 2**63 - 1
_NO_RECORD = "No such quarantine record"
#: a record id in a path: digits (an id beyond 64 bits is a 404: no such record can exist)
EntryId = Annotated[str, Parameter(max_length=19, pattern=r"^[0-9]+$", description="record id")]


class QuarantinePage(msgspec.Struct, kw_only=True):
    items: list[QuarantineEntry]
    #: pass as ``cursor`` for the next page; null on the last page
    next_cursor: str | None


class QuarantineReplayed(msgspec.Struct, kw_only=True):
    id: int
    status: str = "replayed"
    #: events the record yielded, and how many of them were new (not stored before)
    events: int
    new: int


def _entry_id(raw: str) -> int:
    """A path id: digits within 64 bits, else 404 (no such record can exist)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 0 < int(raw) <= _MAX_ID:
        raise ProblemError(404, "Not Found", "no such quarantine record")
    return int(raw)


async def _existing(quarantine: NamedDependency[QuarantineStore], raw_id: str) -> QuarantineEntry:
    entry_id = _entry_id(raw_id)
    entry = await quarantine.get(entry_id)
    if entry is None:
        raise ProblemError(404, "Not Found", f"no quarantine record {entry_id}")
    return entry


@get(
    "/quarantine",
    summary="List quarantined records",
    tags=["quarantine"],
    responses=error_responses(),
)
async def list_quarantine(
    quarantine: NamedDependency[QuarantineStore],
    provider: str | None = Parameter(
        default=None, min_length=1, max_length=64, pattern=NO_NUL, description="only this ESP"
    ),
    source: str | None = Parameter(
        default=None, min_length=1, max_length=200, pattern=NO_NUL, description="only this source"
    ),
    stage: Literal["parse", "store"] | None = Parameter(
        default=None, description="only this stage"
    ),
    limit: int = Parameter(default=50, ge=1, le=500),
    cursor: str | None = Parameter(
        default=None,
        max_length=19,
        pattern=r"^[0-9]{1,19}$",
        description="next_cursor of the last page",
    ),
) -> QuarantinePage:
    """Newest first. ``cursor`` continues from ``next_cursor`` of the previous page."""
    before: int | None = None
    if cursor is not None:  # digits (the pattern); records older than that id
        before = min(int(cursor), _MAX_ID + 1)
    for name, value in (("provider", provider), ("source", source)):
        if value is not None and "\x00" in value:
            raise ProblemError(400, "Bad Request", f"{name}: must not contain NUL")
    items = await quarantine.list(
        provider=provider, source=source, stage=stage, before_id=before, limit=limit + 1
    )
    more = len(items) > limit
    items = items[:limit]
    return QuarantinePage(items=items, next_cursor=str(items[-1].id) if more and items else None)


@get(
    "/quarantine/{entry_id:str}",
    summary="One quarantined record",
    tags=["quarantine"],
    responses=error_responses(s404=_NO_RECORD),
)
async def get_quarantine_entry(
    quarantine: NamedDependency[QuarantineStore], entry_id: EntryId
) -> QuarantineEntry:
    return await _existing(quarantine, entry_id)


@post(
    "/quarantine/{entry_id:str}/replay",
    status_code=200,
    summary="Replay one quarantined record",
    tags=["quarantine"],
    responses=error_responses(
        s404=_NO_RECORD,
        s409="Something must be fixed first (unknown source, already replayed)",
        s422="PostgreSQL or the adapter still refuses the record",
    ),
)
async def replay_quarantine_entry(
    quarantine: NamedDependency[QuarantineStore],
    writer: NamedDependency[IsolatingWriter | None],
    sources: NamedDependency[SourceTable],
    settings: NamedDependency[Settings],
    entry_id: EntryId,
) -> QuarantineReplayed:
    """Stores the record again through the normal path (store stage: the kept event; parse
    stage: the raw item parsed again by its adapter). 409 when something must be fixed
    first (unknown source, already replayed), 422 when the record is still refused; the
    error is kept on the record either way."""
    entry = await _existing(quarantine, entry_id)
    if writer is None:
        raise ProblemError(503, "Service Unavailable", "storage is not available")
    try:
        replayed = await replay_entry(entry, quarantine, writer, sources)
    except ReplayFailedError as exc:
        title = "Conflict" if exc.status == 409 else "Unprocessable Content"
        raise ProblemError(exc.status, title, exc.detail) from None
    except (CircuitOpenError, OSError, TimeoutError, asyncpg.InterfaceError) as exc:
        log.warning("quarantine.replay_unavailable", id=entry.id, error=type(exc).__name__)
        raise ProblemError(
            503,
            "Service Unavailable",
            "storage is unavailable right now; retry later",
            headers={"Retry-After": str(settings.ingest.retry_after_seconds)},
        ) from None
    return QuarantineReplayed(id=entry.id, events=replayed.events, new=replayed.new)


@delete(
    "/quarantine/{entry_id:str}",
    status_code=204,
    summary="Discard a quarantined record",
    tags=["quarantine"],
    responses=error_responses(s404=_NO_RECORD),
)
async def delete_quarantine_entry(
    quarantine: NamedDependency[QuarantineStore], entry_id: EntryId
) -> None:
    record_id = _entry_id(entry_id)
    if not await quarantine.delete(record_id):
        raise ProblemError(404, "Not Found", f"no quarantine record {record_id}")
    log.info("quarantine.discarded", id=record_id)


quarantine_router = Router(
    path="/v1",
    route_handlers=[
        list_quarantine,
        get_quarantine_entry,
        replay_quarantine_entry,
        delete_quarantine_entry,
    ],
    guards=[require_admin_token, require_readable_input],
    middleware=[body_deadline_middleware],
    security=ADMIN_SECURITY,
)
