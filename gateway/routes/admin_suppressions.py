"""Admin API: the suppression list (``/v1/suppressions``), behind the admin bearer token.

* ``GET /v1/suppressions?reason=&limit=&cursor=``: active entries in address order
* ``GET /v1/suppressions/{address}``: one address (404 when not suppressed)
* ``POST /v1/suppressions`` ``{"address", "note"?}``: suppress manually (201; 200 with the
  existing entry when already suppressed for an equal or stronger reason)
* ``DELETE /v1/suppressions/{address}``: take an address off the list

Addresses are matched case-insensitively.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
import structlog
from litestar import Response, Router, delete, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, Parameter

from gateway.delivery.processors.suppressions import RANK
from gateway.delivery.suppression_list import SuppressionEntry, SuppressionList
from gateway.errors import ProblemError
from gateway.routes.admin_auth import require_admin_token
from gateway.routes.admin_input import require_readable_input
from gateway.routes.admin_openapi import ADMIN_SECURITY, NO_NUL, error_responses
from gateway.server.body_deadline import body_deadline_middleware

__all__ = ["suppressions_router"]

log = structlog.get_logger("hookline.admin")

_MAX_ADDRESS = 320
#: one ``@``, something on each side, no control character, space or ``/``
_ADDRESS_PATTERN = r"^[^@\x00-\x20\x7f/]+@[^@\x00-\x20\x7f/]+$"
_ADDRESS = re.compile(_ADDRESS_PATTERN)
Address = Annotated[str, Parameter(min_length=3, max_length=_MAX_ADDRESS, pattern=_ADDRESS_PATTERN)]
_NOT_SUPPRESSED = "The address is not suppressed"


class SuppressionPage(msgspec.Struct, kw_only=True):
    items: list[SuppressionEntry]
    #: pass as ``cursor`` for the next page; null on the last page
    next_cursor: str | None


class NewSuppression(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    address: Annotated[
        str, msgspec.Meta(min_length=3, max_length=_MAX_ADDRESS, pattern=_ADDRESS_PATTERN)
    ]
    note: Annotated[str, msgspec.Meta(max_length=1000, pattern=NO_NUL)] | None = None


def _check_address(address: str) -> str:
    """An address as the OpenAPI document describes it (``_ADDRESS_PATTERN``), else 400."""
    if len(address) > _MAX_ADDRESS or not _ADDRESS.fullmatch(address):
        raise ProblemError(400, "Bad Request", "address: not an email address")
    return address


@get(
    "/suppressions",
    summary="List suppressed addresses",
    tags=["suppressions"],
    responses=error_responses(),
)
async def list_suppressions(
    suppression_list: NamedDependency[SuppressionList],
    reason: str | None = Parameter(
        default=None, description="only this reason", schema_extra={"enum": sorted(RANK)}
    ),
    limit: int = Parameter(default=50, ge=1, le=500),
    cursor: str | None = Parameter(
        default=None,
        description="next_cursor of the last page",
        min_length=1,
        max_length=1024,
        pattern=NO_NUL,
    ),
) -> SuppressionPage:
    """Active entries in address order; filter by ``reason`` (hard_bounce, complaint,
    unsubscribe, soft_bounce, manual)."""
    if reason is not None and reason not in RANK:
        raise ProblemError(400, "Bad Request", f"reason: must be one of {', '.join(sorted(RANK))}")
    items = await suppression_list.list(reason=reason, after=cursor, limit=limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return SuppressionPage(items=items, next_cursor=items[-1].key if more and items else None)


@get(
    "/suppressions/{address:str}",
    summary="Is this address suppressed?",
    tags=["suppressions"],
    responses=error_responses(s404=_NOT_SUPPRESSED),
)
async def get_suppression(
    suppression_list: NamedDependency[SuppressionList], address: Address
) -> SuppressionEntry:
    entry = await suppression_list.get(_check_address(address))
    if entry is None:
        raise ProblemError(404, "Not Found", "address is not suppressed")
    return entry


@post(
    "/suppressions",
    summary="Suppress an address manually",
    tags=["suppressions"],
    responses={
        200: ResponseSpec(
            data_container=SuppressionEntry,
            description="Already suppressed for an equal or stronger reason: the entry as is",
        ),
        **error_responses(),
    },
)
async def add_suppression(
    suppression_list: NamedDependency[SuppressionList], data: JSONBody[NewSuppression]
) -> Response[SuppressionEntry]:
    address = _check_address(data.address)
    entry, created = await suppression_list.add(address, data.note)
    if created:
        log.info("suppressions.added_manually")
    return Response(entry, status_code=201 if created else 200)


@delete(
    "/suppressions/{address:str}",
    status_code=204,
    summary="Remove an address from the suppression list",
    tags=["suppressions"],
    responses=error_responses(s404=_NOT_SUPPRESSED),
)
async def delete_suppression(
    suppression_list: NamedDependency[SuppressionList], address: Address
) -> None:
    if not await suppression_list.remove(_check_address(address)):
        raise ProblemError(404, "Not Found", "address is not suppressed")
    log.info("suppressions.removed")


suppressions_router = Router(
    path="/v1",
    route_handlers=[list_suppressions, get_suppression, add_suppression, delete_suppression],
    guards=[require_admin_token, require_readable_input],
    middleware=[body_deadline_middleware],
    security=ADMIN_SECURITY,
)
