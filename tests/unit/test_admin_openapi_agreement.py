"""The admin API's query parameters are declared once and both views of them agree: the
OpenAPI document Litestar serves names exactly the query parameters the input guard lets
through (``declared_query_parameters``, read from the same signatures: a handler's own and
its query provider's), so no documented parameter is refused as unknown and no accepted one
is undocumented."""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar

from gateway.routes.admin_input import declared_query_parameters

READ_OPERATIONS = (
    "/v1/events",
    "/v1/messages/{message_id}",
    "/v1/recipients/{address}",
    "/v1/recipients",
    "/v1/stats",
)


def _query_parameters(document: dict[str, Any], path: str, method: str = "get") -> set[str]:
    operation = document["paths"][path][method]
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


def _accepted(app: Litestar) -> dict[tuple[str, str], frozenset[str]]:
    """(method, documented path) -> the names the guard accepts, for every /v1 operation."""
    accepted = {}
    for route in app.routes:
        if not route.path.startswith("/v1/"):
            continue
        path = re.sub(r"{(\w+):[^}]*}", r"{\1}", route.path)
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                accepted[(method.lower(), path)] = declared_query_parameters(handler)
    return accepted


def test_documented_query_parameters_are_the_accepted_ones() -> None:
    """For every read operation, documented query names == the names the guard accepts,
    and neither is empty or a dependency's name."""
    app = _full_app()
    document = app.openapi_schema.to_schema()
    accepted = {path: _accepted(app)[("get", path)] for path in READ_OPERATIONS}
    assert {path: _query_parameters(document, path) for path in READ_OPERATIONS} == {
        path: set(names) for path, names in accepted.items()
    }
    assert accepted["/v1/events"] >= {"recipient", "tag", "metadata", "since", "cursor"}
    assert all(names and not names & {"reads", "read_query"} for names in accepted.values())


def _full_app() -> Litestar:
    from gateway.app import create_app
    from gateway.settings import Settings

    return create_app(Settings())


def test_every_operation_documents_exactly_the_query_parameters_it_accepts() -> None:
    """Not only the read API: for every admin operation (DLQ, suppressions, quarantine,
    control messages), the names the input guard accepts, read from the handler's
    signature, are the query parameters the served document lists."""
    app = _full_app()
    document = app.openapi_schema.to_schema()
    accepted = _accepted(app)
    for (method, path), names in accepted.items():
        assert _query_parameters(document, path, method) == set(names), (method, path)
    assert len(accepted) >= 20
