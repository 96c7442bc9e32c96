"""Typed HTTP errors and their mapping to problem+json responses, in one place."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.types import ExceptionHandlersMap

__all__ = [
    "DATABASE_UNAVAILABLE",
    "ProblemError",
    "exception_handlers",
    "problem_body",
    "problem_response",
]

_encode = msgspec.json.Encoder().encode
log = structlog.get_logger("hookline.http")


class ProblemError(Exception):
    """An error the client can act on: status, a short title, an optional detail."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


def problem_body(
    status: int, title: str, detail: str | None = None, extra: dict[str, Any] | None = None
) -> bytes:
    """An RFC 9457 problem document (``application/problem+json``)."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if extra:
        body.update(extra)
    return _encode(body)


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response[bytes]:
    return Response(
        content=problem_body(status, title, detail, extra),
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


def _problem(_: Request[Any, Any, Any], exc: ProblemError) -> Response[bytes]:
    return problem_response(exc.status, exc.title, exc.detail, exc.headers, exc.extra)


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    detail = exc.detail if isinstance(exc.detail, str) else None
    extra: dict[str, Any] = {}
    if isinstance(exc, ValidationException) and exc.extra:
        extra["errors"] = exc.extra
    title = {404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large"}.get(
        exc.status_code, detail or "Error"
    )
    return problem_response(exc.status_code, title, detail, exc.headers, extra)


def _not_found(_: Request[Any, Any, Any], exc: NotFoundException) -> Response[bytes]:
    return problem_response(404, "Not Found", exc.detail if isinstance(exc.detail, str) else None)


#: PostgreSQL (or the way to it) is unavailable: the client should retry later; not a bug
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
)


def _unavailable(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """503 + Retry-After for a route that needed the database while it was unavailable."""
    log.warning("http.database_unavailable", path=request.url.path, error=type(exc).__name__)
    return problem_response(
        503,
        "Service Unavailable",
        "the database is unavailable, retry later",
        headers={"Retry-After": "5"},
    )


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """A bug or an unexpected failure: logged with its traceback, answered with a problem
    document that says nothing about the internals."""
    log.error("http.unhandled_error", method=request.method, path=request.url.path, exc_info=exc)
    return problem_response(500, "Internal Server Error")


exception_handlers: ExceptionHandlersMap = {
    ProblemError: _problem,
    NotFoundException: _not_found,
    HTTPException: _http,
    **dict.fromkeys(DATABASE_UNAVAILABLE, _unavailable),
    Exception: _internal,
}
