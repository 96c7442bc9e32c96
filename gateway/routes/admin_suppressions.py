"""Admin API: the suppression list (``/v1/suppressions``), behind the admin bearer token.

* ``GET /v1/suppressions?reason=&limit=&cursor=``: active entries in address order
* ``GET /v1/suppressions/{address}``: one address (404 when not suppressed)
* ``POST /v1/suppressions`` ``{"address", "note"?}``: suppress manually (201; 200 with the
  existing entry when already suppressed for an equal or stronger reason)
* ``DELETE /v1/suppressions/{address}``: take an address off the list

Addresses are matched case-insensitively.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Request, Response, Router, delete, get, post
from litestar.params import FromPath, JSONBody, Parameter

from gateway.delivery.clock import SystemClock
from gateway.delivery.processors.suppressions import RANK
from gateway.delivery.suppression_list import SuppressionEntry, SuppressionList
from gateway.errors import ProblemError
from gateway.routes.admin_auth import require_admin_token
from gateway.runtime import Runtime

__all__ = ["suppressions_router"]

log = structlog.get_logger("hookline.admin")

_MAX_ADDRESS = 320


class SuppressionPage(msgspec.Struct, kw_only=True):
    items: list[SuppressionEntry]
    #: pass as ``cursor`` for the next page; null on the last page
    next_cursor: str | None


class NewSuppression(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    address: str
    note: str | None = None


def _list(request: Request[Any, Any, Any]) -> SuppressionList:
    runtime: Runtime = request.app.state.runtime
    return SuppressionList(runtime.database.pool, runtime.metrics, SystemClock())


def _check_address(address: str) -> str:
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or len(address) > _MAX_ADDRESS
        or any(ch.isspace() for ch in address)
    ):
        raise ProblemError(400, "Bad Request", "address: not an email address")
    return address


@get("/suppressions", summary="List suppressed addresses", tags=["suppressions"])
async def list_suppressions(
    request: Request[Any, Any, Any],
    reason: str | None = Parameter(default=None, description="only this reason"),
    limit: int = Parameter(default=50, ge=1, le=500),
    cursor: str | None = Parameter(default=None, description="next_cursor of the last page"),
) -> SuppressionPage:
    """Active entries in address order; filter by ``reason`` (hard_bounce, complaint,
    unsubscribe, soft_bounce, manual)."""
    if reason is not None and reason not in RANK:
        raise ProblemError(400, "Bad Request", f"reason: must be one of {', '.join(sorted(RANK))}")
    items = await _list(request).list(reason=reason, after=cursor, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return SuppressionPage(items=items, next_cursor=items[-1].key if more and items else None)


@get("/suppressions/{address:str}", summary="Is this address suppressed?", tags=["suppressions"])
async def get_suppression(
    request: Request[Any, Any, Any], address: FromPath[str]
) -> SuppressionEntry:
    entry = await _list(request).get(_check_address(address))
    if entry is None:
        raise ProblemError(404, "Not Found", "address is not suppressed")
    return entry


@post("/suppressions", summary="Suppress an address manually", tags=["suppressions"])
async def add_suppression(
    request: Request[Any, Any, Any], data: JSONBody[NewSuppression]
) -> Response[SuppressionEntry]:
    address = _check_address(data.address)
    entry, created = await _list(request).add(address, data.note)
    if created:
        log.info("suppressions.added_manually")
    return Response(entry, status_code=201 if created else 200)


@delete(
    "/suppressions/{address:str}",
    status_code=204,
    summary="Remove an address from the suppression list",
    tags=["suppressions"],
)
async def delete_suppression(request: Request[Any, Any, Any], address: FromPath[str]) -> None:
    if not await _list(request).remove(_check_address(address)):
        raise ProblemError(404, "Not Found", "address is not suppressed")
    log.info("suppressions.removed")


suppressions_router = Router(
    path="/v1",
    route_handlers=[list_suppressions, get_suppression, add_suppression, delete_suppression],
    guards=[require_admin_token],
)
