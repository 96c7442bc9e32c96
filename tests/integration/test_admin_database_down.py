"""The admin API while PostgreSQL is down (a real PostgreSQL of this test's own, stopped
mid-test): every operation answers 503 problem+json with Retry-After, never a 500, and
the OpenAPI document says so."""

from __future__ import annotations

from pathlib import Path

from gateway.storage.embedded import EmbeddedPostgres
from tests.integration.conftest import build_settings, serve

TOKEN = "outage-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
REQUESTS: list[tuple[str, str, dict[str, str] | None]] = [
    ("GET", "/v1/events", None),
    ("GET", "/v1/messages/m-1", None),
    ("GET", "/v1/recipients/a@example.com", None),
    ("GET", "/v1/recipients?inactive_days=30", None),
    ("GET", "/v1/stats", None),
    ("GET", "/v1/dlq", None),
    ("GET", "/v1/dlq/1", None),
    ("POST", "/v1/dlq/1/replay", None),
    ("POST", "/v1/dlq/replay", {"sink": "crm"}),
    ("DELETE", "/v1/dlq/1", None),
    ("GET", "/v1/suppressions", None),
    ("GET", "/v1/suppressions/a@example.com", None),
    ("POST", "/v1/suppressions", {"address": "a@example.com"}),
    ("DELETE", "/v1/suppressions/a@example.com", None),
    ("GET", "/v1/control-messages", None),
]


async def test_every_admin_operation_is_503_while_the_database_is_down(
    own_pg: EmbeddedPostgres, tmp_path: Path
) -> None:
    """With PostgreSQL stopped, each admin operation gets 503 + Retry-After as a problem
    document (documented in the OpenAPI for every /v1 operation); none gets a 500."""
    settings = build_settings(
        own_pg.url(),
        tmp_path,
        admin={"token": TOKEN},
        sinks=[{"name": "crm", "url": "http://127.0.0.1:9/hook"}],
        database={"url": own_pg.url(), "connect_timeout_seconds": 1.0},
    )
    async with serve(settings) as gw:
        assert (await gw.client.get("/v1/dlq", headers=AUTH)).status_code == 200
        document = (await gw.client.get("/schema/openapi.json")).json()
        own_pg.stop("immediate")
        answers = []
        for method, path, body in REQUESTS:
            response = await gw.client.request(method, path, json=body, headers=AUTH)
            answers.append(
                (
                    method,
                    path,
                    response.status_code,
                    response.headers.get("content-type"),
                    response.headers.get("retry-after"),
                )
            )
    wrong = [a for a in answers if a[2:] != (503, "application/problem+json", "5")]
    assert wrong == [], wrong
    undocumented = [
        (path, method)
        for path, operations in document["paths"].items()
        if path.startswith("/v1/")
        for method, operation in operations.items()
        if "503" not in operation["responses"]
    ]
    assert undocumented == []
