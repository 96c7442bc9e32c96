"""The admin API's reference (docs/admin-api.md, with the quarantine operations in
docs/quarantine.md) is checked against the OpenAPI document the gateway serves, so the two
cannot drift: every operation is in the reference, every operation the reference names
exists, and every query parameter an operation takes is named there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from gateway.app import create_app
from gateway.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs"
REFERENCE = [DOCS / "admin-api.md", DOCS / "quarantine.md"]
#: "`GET /v1/dlq/{id}" in the reference; query strings and bodies after the path are ignored
MENTION = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/v1/[^`?\s]*)")


def _shape(path: str) -> str:
    """A path with its parameters' names left out: ``/v1/dlq/{entry_id}`` and the
    reference's ``/v1/dlq/{id}`` are the same operation."""
    return re.sub(r"{[^}]*}", "{}", path.rstrip("/"))


def _document() -> dict[str, Any]:
    return create_app(Settings()).openapi_schema.to_schema()


def _reference() -> str:
    return "\n".join(path.read_text() for path in REFERENCE)


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), _shape(path)): operation
        for path, item in document["paths"].items()
        if path.startswith("/v1/")
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }


def test_every_served_operation_is_in_the_reference_and_nothing_else() -> None:
    """The set of operations the reference names is exactly the set the gateway serves."""
    served = set(_operations(_document()))
    named = {(method, _shape(path)) for method, path in MENTION.findall(_reference())}
    assert served - named == set(), "served but not in docs/admin-api.md"
    assert named - served == set(), "in the reference but not served"


def test_every_query_parameter_is_named_in_the_reference() -> None:
    """Each query parameter of each operation appears in the reference (as `name`, name= or
    in a list of filters), so a new parameter cannot ship undocumented."""
    text = _reference()
    missing = sorted(
        (method, path, parameter["name"])
        for (method, path), operation in _operations(_document()).items()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "query"
        and f"`{parameter['name']}`" not in text
        and f"{parameter['name']}=" not in text
    )
    assert missing == []
