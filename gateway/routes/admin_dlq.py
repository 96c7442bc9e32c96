"""Admin API: the dead-letter queue (``/v1/dlq``), behind the admin bearer token.

* ``GET /v1/dlq?sink=&limit=&cursor=``: entries, newest first, keyset-paginated
* ``GET /v1/dlq/{id}``: one entry, with the event payload
* ``POST /v1/dlq/{id}/replay``: move one entry back to the outbox
* ``POST /v1/dlq/replay`` ``{"sink", "since"?, "until"?}``: bulk replay in the background
  (202 with a job id; ``GET /v1/dlq/replay/{job_id}`` shows its progress, on any replica:
  jobs are kept in PostgreSQL)
* ``DELETE /v1/dlq/{id}``: discard an entry
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
import structlog
from litestar import Router, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter

from gateway.delivery.bulk_replays import BulkReplays
from gateway.delivery.dlq import DeadLetterQueue, DlqEntry
from gateway.delivery.replay_jobs import ReplayJob, ReplayJobs
from gateway.delivery.service import DeliveryService
from gateway.errors import ProblemError
from gateway.routes.admin_auth import require_admin_token
from gateway.routes.admin_input import require_readable_input
from gateway.routes.admin_openapi import ADMIN_SECURITY, MAX_ID, NO_NUL, error_responses
from gateway.server.body_deadline import body_deadline_middleware

__all__ = ["dlq_router"]

log = structlog.get_logger("hookline.admin")


class DlqPage(msgspec.Struct, kw_only=True):
    items: list[DlqEntry]
    #: pass as ``cursor`` for the next page; null on the last page
    next_cursor: str | None


class Replayed(msgspec.Struct, kw_only=True):
    id: int
    status: str = "replayed"


#: a sink name as configured (bounded, no NUL)
SinkName = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=NO_NUL)]
#: a DLQ entry id (bigint)
EntryId = Annotated[int, Parameter(ge=1, le=MAX_ID, description="the entry's id")]
_NO_ENTRY = "No DLQ entry has this id"


class BulkReplay(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Replay every entry of ``sink`` dead-lettered in ``[since, until)`` (``since`` before
    ``until`` when both are given)."""

    sink: SinkName
    since: datetime | None = None
    until: datetime | None = None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@get("/dlq", summary="List dead-lettered deliveries", tags=["dlq"], responses=error_responses())
async def list_dlq(
    dlq: NamedDependency[DeadLetterQueue],
    sink: str | None = Parameter(
        default=None, description="only this sink", min_length=1, max_length=200, pattern=NO_NUL
    ),
    limit: int = Parameter(default=50, ge=1, le=500),
    cursor: str | None = Parameter(
        default=None, description="next_cursor of the last page", pattern=r"^[0-9]{1,18}$"
    ),
) -> DlqPage:
    """Newest first. ``cursor`` continues from ``next_cursor`` of the previous page."""
    before: int | None = None
    if cursor is not None:
        if not cursor.isdigit():
            raise ProblemError(400, "Bad Request", "cursor: not a value this API returned")
        before = int(cursor)
    items = await dlq.list(sink=sink, before_id=before, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return DlqPage(items=items, next_cursor=str(items[-1].id) if more and items else None)


@get(
    "/dlq/{entry_id:int}",
    summary="One dead-lettered delivery, with its event",
    tags=["dlq"],
    responses=error_responses(s404=_NO_ENTRY),
)
async def get_dlq_entry(dlq: NamedDependency[DeadLetterQueue], entry_id: EntryId) -> DlqEntry:
    entry = await dlq.get(entry_id)
    if entry is None:
        raise ProblemError(404, "Not Found", f"no DLQ entry {entry_id}")
    return entry


@post(
    "/dlq/{entry_id:int}/replay",
    status_code=200,
    summary="Replay one dead-lettered delivery",
    tags=["dlq"],
    responses=error_responses(s404=_NO_ENTRY, s409="The entry's sink is not configured"),
)
async def replay_dlq_entry(
    dlq: NamedDependency[DeadLetterQueue],
    delivery: NamedDependency[DeliveryService],
    entry_id: EntryId,
) -> Replayed:
    """Moves the entry back to the outbox; it is delivered again (once) with the same
    webhook-id. 404 if there is no such entry (e.g. it was already replayed)."""
    entry = await dlq.get(entry_id)
    if entry is None:
        raise ProblemError(404, "Not Found", f"no DLQ entry {entry_id}")
    if not delivery.sink_configured(entry.sink):
        raise ProblemError(409, "Conflict", f"sink '{entry.sink}' is not configured; cannot replay")
    if not await dlq.replay(entry_id):
        raise ProblemError(404, "Not Found", f"no DLQ entry {entry_id}")
    log.info("dlq.replayed", id=entry_id, sink=entry.sink)
    await delivery.refresh_gauges()
    return Replayed(id=entry_id)


@post(
    "/dlq/replay",
    status_code=202,
    summary="Replay DLQ entries in bulk",
    tags=["dlq"],
    responses=error_responses(s409="The sink is not configured"),
)
async def replay_dlq_range(
    dlq: NamedDependency[DeadLetterQueue],
    delivery: NamedDependency[DeliveryService],
    bulk_replays: NamedDependency[BulkReplays],
    data: JSONBody[BulkReplay],
) -> ReplayJob:
    """Replays, in the background, the entries of one sink dead-lettered in
    ``[since, until)`` (both optional)."""
    if not delivery.sink_configured(data.sink):
        raise ProblemError(409, "Conflict", f"sink: '{data.sink}' is not configured")
    since, until = _utc(data.since), _utc(data.until)
    if since is not None and until is not None and since >= until:
        raise ProblemError(400, "Bad Request", "since: must be before until")
    selection = await dlq.select_range(data.sink, since, until)
    return await bulk_replays.start(selection)


@get(
    "/dlq/replay/{job_id:str}",
    summary="Progress of a bulk replay",
    tags=["dlq"],
    responses=error_responses(s404="No such replay job"),
)
async def replay_job(
    replay_jobs: NamedDependency[ReplayJobs],
    job_id: Annotated[str, Parameter(max_length=64, pattern=r"^[0-9A-Za-z_-]+$")],
) -> ReplayJob:
    job = await replay_jobs.get(job_id)
    if job is None:
        raise ProblemError(404, "Not Found", f"no replay job {job_id}")
    return job


@delete(
    "/dlq/{entry_id:int}",
    status_code=204,
    summary="Discard a DLQ entry",
    tags=["dlq"],
    responses=error_responses(s404=_NO_ENTRY),
)
async def delete_dlq_entry(
    dlq: NamedDependency[DeadLetterQueue],
    delivery: NamedDependency[DeliveryService],
    entry_id: EntryId,
) -> None:
    if not await dlq.delete(entry_id):
        raise ProblemError(404, "Not Found", f"no DLQ entry {entry_id}")
    log.info("dlq.discarded", id=entry_id)
    await delivery.refresh_gauges()


dlq_router = Router(
    path="/v1",
    route_handlers=[
        list_dlq,
        get_dlq_entry,
        replay_dlq_entry,
        replay_dlq_range,
        replay_job,
        delete_dlq_entry,
    ],
    guards=[require_admin_token, require_readable_input],
    middleware=[body_deadline_middleware],
    security=ADMIN_SECURITY,
)
