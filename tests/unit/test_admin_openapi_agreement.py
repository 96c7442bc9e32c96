"""The admin API's read parameters are declared once and both views of them agree: the
OpenAPI document Litestar serves (from each operation's query provider) names exactly the
query parameters the input guard lets through (``opt[QUERY_PARAMETERS]``, taken from the same
provider), so no documented parameter is refused as unknown and no accepted one is
undocumented."""

from __future__ import annotations

import re
from typing import Any

from litestar import Litestar

from gateway.routes.admin_dependencies import admin_dependencies
from gateway.routes.admin_input import QUERY_PARAMETERS, declared_query_parameters
from gateway.routes.admin_openapi import StrictStructSchemaPlugin
from gateway.routes.admin_query import (
    get_message,
    get_recipient,
    get_stats,
    list_inactive_recipients,
    query_router,
    search_events,
)

ACCEPTED = {
    "/v1/events": search_events.opt[QUERY_PARAMETERS],
    "/v1/messages/{message_id}": get_message.opt[QUERY_PARAMETERS],
    "/v1/recipients/{address}": get_recipient.opt[QUERY_PARAMETERS],
    "/v1/recipients": list_inactive_recipients.opt[QUERY_PARAMETERS],
    "/v1/stats": get_stats.opt[QUERY_PARAMETERS],
}


def _query_parameters(document: dict[str, Any], path: str) -> set[str]:
    operation = document["paths"][path]["get"]
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


def test_documented_query_parameters_are_the_accepted_ones() -> None:
    """For every read operation, documented query names == the names the guard accepts,
    and neither is empty or a dependency's name."""
    app = Litestar(
        route_handlers=[query_router],
        dependencies=admin_dependencies(),  # as gateway/app.py registers them
        plugins=[StrictStructSchemaPlugin()],
    )
    document = app.openapi_schema.to_schema()
    assert {path: _query_parameters(document, path) for path in ACCEPTED} == {
        path: set(names) for path, names in ACCEPTED.items()
    }
    assert ACCEPTED["/v1/events"] >= {"recipient", "tag", "metadata", "since", "cursor"}
    assert all(names and not names & {"reads", "read_query"} for names in ACCEPTED.values())


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
    checked = 0
    for route in app.routes:
        if not route.path.startswith("/v1/"):
            continue
        path = re.sub(r"{(\w+):[^}]*}", r"{\1}", route.path)
        for handler in getattr(route, "route_handlers", []):
            for method in handler.http_methods - {"OPTIONS", "HEAD"}:
                operation = document["paths"][path][method.lower()]
                documented = {
                    p["name"] for p in operation.get("parameters", []) if p["in"] == "query"
                }
                assert documented == set(declared_query_parameters(handler)), (method, path)
                checked += 1
    assert checked >= 20
