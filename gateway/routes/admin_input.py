"""The admin API's guard against input no handler can use: a path or query string whose
percent-encoding is not UTF-8 (a lone surrogate, stray bytes: decoded leniently they would
silently become U+FFFD and be searched for), a query parameter the operation does not
declare (when it lists its names in ``opt[QUERY_PARAMETERS]``, as the read operations of
``admin_query.py`` do), and a JSON body nested so deeply that decoding it overflows the
stack. All are 400 problem+json; the guard runs after the token check,
so unauthenticated requests never get this far."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import msgspec
from litestar.connection import ASGIConnection, Request
from litestar.handlers.base import BaseRouteHandler

from gateway.errors import ProblemError

__all__ = ["QUERY_PARAMETERS", "require_readable_input"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: the query parameters an operation declares as arrays (``tag=a&tag=b``); any other name
#: given twice is ambiguous (which one counts?) and refused
REPEATABLE = frozenset({"tag", "metadata"})
#: the ``opt`` key of a handler that lists every query parameter it accepts: others are 400
QUERY_PARAMETERS = "query_parameters"


def _utf8(raw: bytes) -> bool:
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def require_readable_input(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """400 for a non-UTF-8 path or query string, a query parameter given twice that is not
    an array or not declared, or a JSON body nested too deeply."""
    scope = connection.scope
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
    if not _utf8(raw_path):
        raise ProblemError(400, "Bad Request", "the path is not valid UTF-8")
    query: bytes = scope.get("query_string", b"")
    if not _utf8(query):
        raise ProblemError(400, "Bad Request", "the query string is not valid UTF-8")
    names = Counter(name for name, _ in parse_qsl(query.decode(), keep_blank_values=True))
    repeated = sorted(name for name, count in names.items() if count > 1 and name not in REPEATABLE)
    if repeated:
        raise ProblemError(400, "Bad Request", f"{repeated[0]}: given more than once")
    declared: frozenset[str] | None = handler.opt.get(QUERY_PARAMETERS)
    if declared is not None and not names.keys() <= declared:
        unknown = min(names.keys() - declared)
        allowed = ", ".join(sorted(declared))
        raise ProblemError(400, "Bad Request", f"{unknown}: unknown parameter (allowed: {allowed})")
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
