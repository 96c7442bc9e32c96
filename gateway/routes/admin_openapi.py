"""What the admin API (``/v1``) promises in its OpenAPI document, in one place: the error
responses every operation can give (problem+json), the bearer-token security scheme, and
the bounds on path, query and body values. The routes declare their parameters with these
bounds, so Litestar enforces exactly what the document says (400 problem+json otherwise)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, Schema, SecurityScheme

from gateway.query.models import Problem

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

__all__ = [
    "ADMIN_SECURITY",
    "ADMIN_SECURITY_COMPONENTS",
    "MAX_ID",
    "NO_NUL",
    "StrictStructSchemaPlugin",
    "error_responses",
    "problem",
]

#: ids are PostgreSQL bigint: anything above is no id at all (400, never a 500)
MAX_ID = 2**63 - 1
#: text that PostgreSQL can store (no NUL character)
NO_NUL = r"^[^\x00]*$"

_SCHEME = "adminToken"
#: every /v1 operation needs ``Authorization: Bearer <[admin] token>``
ADMIN_SECURITY: list[dict[str, list[str]]] = [{_SCHEME: []}]
ADMIN_SECURITY_COMPONENTS = Components(
    security_schemes={
        _SCHEME: SecurityScheme(
            type="http", scheme="bearer", description="the [admin] token of the configuration"
        )
    }
)


def problem(description: str) -> ResponseSpec:
    """An error response: an RFC 9457 problem document."""
    return ResponseSpec(
        data_container=Problem,
        description=description,
        media_type="application/problem+json",
        generate_examples=False,
    )


_COMMON = {
    400: "Bad input: a value out of its bounds, of the wrong type or shape, or unknown",
    401: "Missing or wrong admin bearer token",
    503: "The database is unavailable (Retry-After says when to try again)",
}


def error_responses(**extra: str) -> dict[int, ResponseSpec]:
    """400, 401 and 503 (every operation) plus ``extra`` given as ``s404="why"``."""
    described = {**_COMMON, **{int(code.removeprefix("s")): text for code, text in extra.items()}}
    return {code: problem(text) for code, text in sorted(described.items())}


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's msgspec schemas, plus ``additionalProperties: false`` for a struct with
    ``forbid_unknown_fields`` (the request bodies): the document says what the decoder
    enforces, so an unknown field is documented as a 400 rather than a surprise."""

    def to_openapi_schema(
        self, field_definition: FieldDefinition, schema_creator: SchemaCreator
    ) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            schema.additional_properties = False
        return schema
