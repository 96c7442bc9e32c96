"""Transport authentication shared by every adapter (``handlers/base.py``): basic auth and
bearer tokens on a source, the reason each refusal carries (a metric label operators read:
``missing`` means "not sent", ``invalid`` means "sent and wrong"), and the signature
timestamp header helper."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from handlers import postmark
from handlers.base import (
    Adapter,
    AuthError,
    ParseResult,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
    parse_timestamp_header,
)
from hookline_testing import samples_for

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CONTEXT = VerifyContext(now=NOW)
ADAPTER = postmark.ADAPTER
CREDENTIALS = "hook:s3cret"
GOOD_BASIC = "Basic " + base64.b64encode(CREDENTIALS.encode()).decode()


def source(*, basic_auth: str | None = None, bearer_token: str | None = None) -> SourceSpec:
    spec, _ = samples_for("postmark").make_source()
    return replace(spec, basic_auth=basic_auth, bearer_token=bearer_token)


def request(authorization: str | None) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    return WebhookRequest("POST", "http://127.0.0.1/webhooks/postmark/main", headers, b"{}")


async def reason(spec: SourceSpec, authorization: str | None) -> str:
    with pytest.raises(AuthError) as caught:
        await ADAPTER.verify(request(authorization), spec, CONTEXT)
    return caught.value.reason


async def test_credentials_of_another_scheme_are_missing_not_invalid() -> None:
    """A basic-auth source sent a bearer token (or the reverse) did not receive the
    credentials it expects: ``missing``, like no Authorization header at all."""
    assert await reason(source(basic_auth=CREDENTIALS), "Bearer s3cret") == "missing"
    assert await reason(source(bearer_token="t0ken"), GOOD_BASIC) == "missing"


async def test_extra_spaces_after_the_scheme_are_tolerated() -> None:
    """``Basic  <credentials>`` and ``Bearer  <token>`` (two spaces) carry the right
    credentials and are accepted."""
    await ADAPTER.verify(
        request(GOOD_BASIC.replace(" ", "  ")), source(basic_auth=CREDENTIALS), CONTEXT
    )
    await ADAPTER.verify(request("Bearer  t0ken"), source(bearer_token="t0ken"), CONTEXT)


async def test_basic_credentials_must_be_strict_base64() -> None:
    """Credentials that are not base64 are ``invalid``; so are the right credentials with
    a stray character a lenient decoder would silently drop."""
    spec = source(basic_auth=CREDENTIALS)
    assert await reason(spec, "Basic !!!") == "invalid"
    encoded = GOOD_BASIC.removeprefix("Basic ")
    assert await reason(spec, f"Basic {encoded[:4]}!{encoded[4:]}") == "invalid"


async def test_with_both_schemes_configured_a_wrong_credential_is_reported_invalid() -> None:
    """A source accepting basic auth or a bearer token, sent a wrong bearer token: the
    basic check found nothing (missing) but the bearer check found a wrong token, and the
    refusal says ``invalid``, the more telling of the two."""
    spec = source(basic_auth=CREDENTIALS, bearer_token="t0ken")
    assert await reason(spec, "Bearer nope") == "invalid"
    assert await reason(spec, None) == "missing"
    await ADAPTER.verify(request("Bearer t0ken"), spec, CONTEXT)


class TransportOnly(Adapter):
    """An adapter that keeps ``Adapter.verify``, the default (transport auth only)."""

    provider = "transport-only"

    def parse(
        self, request: WebhookRequest, source: SourceSpec, received_at: datetime
    ) -> ParseResult:
        return ParseResult(events=[])  # only verify is under test here


async def test_the_default_verify_checks_the_sources_transport_auth() -> None:
    """``Adapter.verify``, for an adapter that does not override it, checks the source's
    basic auth: right credentials pass, wrong ones are ``invalid``, none are ``missing``."""
    adapter, spec = TransportOnly(), source(basic_auth=CREDENTIALS)
    await adapter.verify(request(GOOD_BASIC), spec, CONTEXT)
    wrong = "Basic " + base64.b64encode(b"hook:x").decode()
    for authorization, expected in ((wrong, "invalid"), (None, "missing")):
        with pytest.raises(AuthError) as caught:
            await adapter.verify(request(authorization), spec, CONTEXT)
        assert caught.value.reason == expected


def test_an_empty_timestamp_header_is_missing_and_a_garbled_one_invalid() -> None:
    """A signature timestamp header that is absent or empty is ``missing``; one that is
    not an integer is ``invalid``; an integer is that epoch second in UTC."""
    for value in (None, ""):
        with pytest.raises(AuthError) as caught:
            parse_timestamp_header(value)
        assert caught.value.reason == "missing"
    with pytest.raises(AuthError) as caught:
        parse_timestamp_header("soon")
    assert caught.value.reason == "invalid"
    assert parse_timestamp_header(" 1767225600 ") == NOW
