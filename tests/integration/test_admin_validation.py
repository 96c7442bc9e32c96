"""Hostile input to every admin API operation of a real gateway (real PostgreSQL): ids
beyond 64 bits, NUL bytes and lone surrogates in paths, query values and cursors, values
over their length bound and deeply nested JSON bodies are all answered 400 with a
problem+json body, never 5xx."""

from __future__ import annotations

from typing import Any

import pytest

TOKEN = "validation-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BEYOND_BIGINT = [str(2**63), str(2**64), "9" * 40]
NUL = "%00"
SURROGATE = "%ED%A0%80"  # UTF-8 bytes of a lone surrogate: not valid UTF-8
LONG = "x" * 5000
DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000

CASES: list[tuple[str, str, bytes | None]] = [
    *[("GET", f"/v1/dlq/{big}", None) for big in BEYOND_BIGINT],
    *[("DELETE", f"/v1/dlq/{big}", None) for big in BEYOND_BIGINT],
    *[("POST", f"/v1/dlq/{big}/replay", None) for big in BEYOND_BIGINT],
    *[("GET", f"/v1/control-messages?cursor={big}", None) for big in BEYOND_BIGINT],
    ("GET", f"/v1/dlq?cursor={2**63}", None),
    ("GET", "/v1/dlq?cursor=%C2%B2", None),  # a Unicode digit
    # a parameter that is not an array, given twice: which one would count?
    ("GET", "/v1/suppressions?cursor=&cursor=a%40example.com", None),
    ("GET", "/v1/events?limit=1&limit=2", None),
    ("GET", "/v1/quarantine?stage=parse&stage=store", None),
    ("GET", f"/v1/events?cursor=e1.1.{2**64}", None),
    ("GET", f"/v1/events?cursor=e1.{10**22}.1", None),
    ("GET", f"/v1/events?cursor=e1.1.1{NUL}", None),
    ("GET", f"/v1/events?cursor={SURROGATE}", None),
    ("GET", f"/v1/recipients?inactive_days=30&cursor=a1.x{NUL}", None),
    ("GET", f"/v1/events?recipient=a{NUL}b", None),
    ("GET", f"/v1/events?recipient={SURROGATE}", None),
    ("GET", f"/v1/events?tag={NUL}", None),
    ("GET", f"/v1/events?metadata=k:{NUL}", None),
    ("GET", f"/v1/events?message_id={LONG}", None),
    ("GET", f"/v1/events?since={NUL}", None),
    ("GET", f"/v1/stats?source={SURROGATE}", None),
    ("GET", f"/v1/messages/m{NUL}", None),
    ("GET", f"/v1/messages/{SURROGATE}", None),
    ("GET", f"/v1/messages/{LONG}", None),
    ("GET", f"/v1/recipients/a{NUL}@example.com", None),
    ("GET", f"/v1/recipients/{SURROGATE}@example.com", None),
    ("GET", f"/v1/suppressions/a{NUL}@example.com", None),
    ("GET", f"/v1/suppressions/{SURROGATE}@example.com", None),
    ("DELETE", f"/v1/suppressions/{LONG}@example.com", None),
    ("GET", f"/v1/suppressions?cursor=a{NUL}", None),
    ("GET", f"/v1/dlq?sink={NUL}", None),
    ("GET", f"/v1/dlq/replay/{SURROGATE}", None),
    ("GET", f"/v1/dlq/replay/{LONG}", None),
    ("POST", "/v1/suppressions", DEEP),
    ("POST", "/v1/suppressions", DEEP_OBJECT),
    ("POST", "/v1/dlq/replay", DEEP),
    ("POST", "/v1/dlq/replay", DEEP_OBJECT),
    ("POST", "/v1/suppressions", b'{"address": "a\\u0000@example.com"}'),
    ("POST", "/v1/suppressions", b'{"address": "\\ud800@example.com"}'),
    ("POST", "/v1/suppressions", b'{"address": "a@example.com", "note": "\\u0000"}'),
    ("POST", "/v1/suppressions", b'{"address": "' + b"a" * 400 + b'@example.com"}'),
    ("POST", "/v1/dlq/replay", b'{"sink": "crm\\u0000"}'),
    ("POST", "/v1/dlq/replay", b'{"sink": "crm", "since": "not a time"}'),
]


@pytest.fixture
async def gateway(gateway_factory: Any) -> Any:
    async with gateway_factory(
        admin={"token": TOKEN}, sinks=[{"name": "crm", "url": "http://127.0.0.1:9/hook"}]
    ) as gw:
        yield gw


async def test_hostile_admin_input_is_a_4xx_problem_never_a_5xx(gateway: Any) -> None:
    """Every hostile request gets a 400 with an application/problem+json body; the gateway
    keeps answering afterwards."""
    answers = []
    for method, path, body in CASES:
        headers = {**AUTH, "content-type": "application/json"} if body is not None else AUTH
        response = await gateway.client.request(method, path, content=body, headers=headers)
        answers.append(
            (method, path[:80], response.status_code, response.headers.get("content-type"))
        )
    bad = [a for a in answers if a[2] != 400 or a[3] != "application/problem+json"]
    assert bad == [], "\n".join(map(str, bad))
    assert (await gateway.client.get("/v1/dlq", headers=AUTH)).status_code == 200


UNDECLARED = [
    ("/v1/dlq?=", "(a parameter without a name)"),
    ("/v1/dlq?cursor=00&=", "(a parameter without a name)"),
    ("/v1/dlq?page=2", "page"),
    ("/v1/suppressions?address=a%40example.com", "address"),
    ("/v1/quarantine?kind=parse", "kind"),
    ("/v1/control-messages?offset=10", "offset"),
    ("/v1/dlq/1?verbose=1", "verbose"),
    ("/v1/events?limt=5", "limt"),
]


@pytest.mark.parametrize(("path", "named"), UNDECLARED)
async def test_a_query_parameter_the_operation_does_not_declare_is_400(
    gateway: Any, path: str, named: str
) -> None:
    """Every admin operation, not only the read API, refuses a query parameter it does not
    declare (a typo would otherwise be silently ignored and answer as if unfiltered), and
    the problem names it and what is allowed."""
    response = await gateway.client.get(path, headers=AUTH)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith(f"{named}: unknown parameter (allowed: ")
