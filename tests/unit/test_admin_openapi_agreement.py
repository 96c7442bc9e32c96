"""The admin API's two views of its read parameters agree: the OpenAPI document Litestar
serves (from the handlers' declarations) names exactly the query parameters that
``gateway.query.filters`` accepts, so no documented parameter is refused as unknown and no
accepted one is undocumented."""

from __future__ import annotations

from typing import Any

from litestar import Litestar

from gateway.query.filters import (
    EVENT_PARAMETERS,
    INACTIVE_PARAMETERS,
    MESSAGE_PARAMETERS,
    RECIPIENT_PARAMETERS,
    STATS_PARAMETERS,
)
from gateway.routes.admin_dependencies import admin_dependencies
from gateway.routes.admin_openapi import StrictStructSchemaPlugin
from gateway.routes.admin_query import query_router

ACCEPTED = {
    "/v1/events": EVENT_PARAMETERS,
    "/v1/messages/{message_id}": MESSAGE_PARAMETERS,
    "/v1/recipients/{address}": RECIPIENT_PARAMETERS,
    "/v1/recipients": INACTIVE_PARAMETERS,
    "/v1/stats": STATS_PARAMETERS,
}


def _query_parameters(document: dict[str, Any], path: str) -> set[str]:
    operation = document["paths"][path]["get"]
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


def test_documented_query_parameters_are_the_accepted_ones() -> None:
    """For every read operation, documented query names == the parser's allowed names."""
    app = Litestar(
        route_handlers=[query_router],
        dependencies=admin_dependencies(),  # as gateway/app.py registers them
        plugins=[StrictStructSchemaPlugin()],
    )
    document = app.openapi_schema.to_schema()
    assert {path: _query_parameters(document, path) for path in ACCEPTED} == {
        path: set(names) for path, names in ACCEPTED.items()
    }
