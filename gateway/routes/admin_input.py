"""The admin API's guard against input no handler can use: a path or query string whose
percent-encoding is not UTF-8 (a lone surrogate, stray bytes: decoded leniently they would
silently become U+FFFD and be searched for), and a JSON body nested so deeply that decoding
it overflows the stack. Both are 400 problem+json; the guard runs after the token check,
so unauthenticated requests never get this far."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec
from litestar.connection import ASGIConnection, Request
from litestar.handlers.base import BaseRouteHandler

from gateway.errors import ProblemError

__all__ = ["require_readable_input"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _utf8(raw: bytes) -> bool:
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def require_readable_input(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """400 for a non-UTF-8 path or query string, or a JSON body nested too deeply."""
    scope = connection.scope
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
    if not _utf8(raw_path):
        raise ProblemError(400, "Bad Request", "the path is not valid UTF-8")
    if not _utf8(scope.get("query_string", b"")):
        raise ProblemError(400, "Bad Request", "the query string is not valid UTF-8")
    if isinstance(connection, Request) and connection.method in _BODY_METHODS:
        body = await connection.body()
        if body:
            try:
                msgspec.json.decode(body)
            except RecursionError:
                raise ProblemError(
                    400, "Bad Request", "the JSON body is nested too deeply"
                ) from None
            except msgspec.DecodeError:
                pass  # malformed JSON: the handler's decoder says what is wrong (400)
