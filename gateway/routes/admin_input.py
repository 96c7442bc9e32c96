"""The admin API's guard against input no handler can use: a path or query string whose
percent-encoding is not UTF-8 (a lone surrogate, stray bytes: decoded leniently they would
silently become U+FFFD and be searched for), a query parameter the operation does not
declare (read from the handler's signature and its query provider's, see
``declared_query_parameters``), and a JSON body nested so deeply that decoding
it overflows the stack. All are 400 problem+json; the guard runs after the token check, so
unauthenticated requests never get this far."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes

import msgspec
from litestar.connection import ASGIConnection, Request
from litestar.di import Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import ParameterKwarg
from litestar.typing import FieldDefinition

from gateway.errors import ProblemError

__all__ = ["declared_query_parameters", "require_readable_input"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
#: the query parameters an operation declares as arrays (``tag=a&tag=b``); any other name
#: given twice is ambiguous (which one counts?) and refused
REPEATABLE = frozenset({"tag", "metadata"})
#: the ``opt`` key under which a handler's declared query parameter names are kept
_DECLARED = "declared_query_parameters"
#: the names Litestar injects itself rather than reading from the query string
_RESERVED = frozenset(
    {"data", "request", "state", "headers", "cookies", "query", "scope", "socket", "body"}
)
#: ``{name}`` or ``{name:type}`` in a route's path template
_PATH_PARAMETER = re.compile(r"{(\w+)(?::[^}]*)?}")


def _utf8(raw: bytes) -> bool:
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def declared_query_parameters(handler: BaseRouteHandler) -> frozenset[str]:
    """The query parameter names an operation accepts, read once from its signature and the
    signatures of the dependencies it names (a read operation's query provider), and kept in
    ``opt``: every parameter that is not a path parameter, a header, a cookie, one of
    Litestar's reserved names such as ``data``, or itself a dependency."""
    declared: frozenset[str] | None = handler.opt.get(_DECLARED)
    if declared is None:
        path = {name for template in handler.paths for name in _PATH_PARAMETER.findall(template)}
        provided = handler.resolve_dependencies()
        declared = frozenset(_query_names(handler.parsed_fn_signature.parameters, path, provided))
        handler.opt[_DECLARED] = declared
    return declared


def _query_names(
    parameters: Mapping[str, FieldDefinition], path: set[str], provided: Mapping[str, Provide]
) -> set[str]:
    names: set[str] = set()
    for name, field in parameters.items():
        if name in path or name in _RESERVED:
            continue
        if name in provided:  # a dependency: the query parameters its provider declares
            names |= _query_names(provided[name].parsed_fn_signature.parameters, path, provided)
            continue
        kwarg = field.kwarg_definition
        if isinstance(kwarg, ParameterKwarg):
            if not (kwarg.header or kwarg.cookie):
                names.add(kwarg.query or name)
        elif kwarg is None:
            names.add(name)
    return names


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
    declared = declared_query_parameters(handler)
    if not names.keys() <= declared:
        unknown = min(names.keys() - declared) or "(a parameter without a name)"
        allowed = ", ".join(sorted(declared)) or "none"
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
