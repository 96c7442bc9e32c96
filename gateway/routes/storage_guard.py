"""A guard for routes that need PostgreSQL: 503 problem+json (with Retry-After) while the
gateway runs without it (started with the database down, still connecting)."""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from gateway.errors import ProblemError
from gateway.runtime import Runtime

__all__ = ["require_storage"]


def require_storage(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    runtime: Runtime = connection.app.state.runtime
    if not runtime.database.connected.is_set():
        raise ProblemError(
            503,
            "Service Unavailable",
            "storage (PostgreSQL) is not connected yet; retry later",
            headers={"Retry-After": str(runtime.settings.ingest.retry_after_seconds)},
        )
