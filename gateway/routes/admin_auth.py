"""The admin API's bearer-token guard (``[admin] token``)."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from gateway.errors import ProblemError

__all__ = ["require_admin_token"]


def require_admin_token(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """401 unless ``Authorization: Bearer <[admin] token>``; 503-free: no token configured
    means the admin API is disabled (401 for everyone)."""
    expected: str | None = connection.app.state.runtime.settings.admin.token
    header = connection.headers.get("authorization", "")
    scheme, _sep, given = header.partition(" ")
    if (
        not expected
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(given.strip().encode(), expected.encode())
    ):
        raise ProblemError(
            401,
            "Unauthorized",
            "admin API requires 'Authorization: Bearer <token>'"
            + ("" if expected else " and no [admin] token is configured"),
            headers={"WWW-Authenticate": 'Bearer realm="hookline-admin"'},
        )
