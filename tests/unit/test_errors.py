"""The error mapping: every error leaves as an RFC 9457 problem document."""

from __future__ import annotations

from litestar import Litestar, get
from litestar.testing import TestClient

from gateway.errors import ProblemError, exception_handlers


@get("/boom")
async def boom() -> None:
    raise RuntimeError("secret-token-123 leaked into an exception message")


@get("/refused")
async def refused() -> None:
    raise ProblemError(409, "Conflict", "already there")


def _client() -> TestClient[Litestar]:
    return TestClient(Litestar([boom, refused], exception_handlers=exception_handlers))


def test_an_unexpected_error_is_a_500_problem_that_reveals_nothing() -> None:
    with _client() as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
    }
    assert "secret" not in response.text


def test_a_problem_error_keeps_its_status_and_detail() -> None:
    with _client() as client:
        response = client.get("/refused")
    assert response.status_code == 409
    assert response.json()["detail"] == "already there"
