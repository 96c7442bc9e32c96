"""The adapter contract, checked the same way for every provider module that exists.

Each provider's samples (``hookline_testing.samples_for``: ``make_source``, ``example_body``,
``signed_request``) produce the traffic; the gateway's call sequence
(``check_content_type`` -> ``verify`` -> ``parse``) consumes it.
"""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handlers.base import (
    Adapter,
    AuthError,
    ContentTypeError,
    ParseResult,
    PayloadError,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import EmailEvent, EventType
from handlers.registry import PROVIDERS, available_providers, get_adapter
from hookline_testing import Samples, samples_for

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@functools.cache
def credentials(provider: str) -> tuple[SourceSpec, Any]:
    """One test source per provider for the whole module (key generation is slow)."""
    source, material = samples_for(provider).make_source(name="contract")
    return source, material


def request_for(provider: str, body: bytes, now: datetime) -> WebhookRequest:
    source, material = credentials(provider)
    request = samples_for(provider).signed_request(source, material, body, now=now)
    assert isinstance(request, WebhookRequest)
    return request


async def accept(provider: str, request: WebhookRequest, now: datetime) -> ParseResult:
    """What the gateway does with a request, in order."""
    adapter = get_adapter(provider)
    source, _ = credentials(provider)
    adapter.check_content_type(request)
    await adapter.verify(request, source, VerifyContext(now=now))
    return adapter.parse(request, source, now)


def now() -> datetime:
    return datetime.now(UTC)


def test_every_known_provider_is_available() -> None:
    """Every provider the registry knows has an importable adapter module: a missing one
    fails here (and its parametrized tests below fail too, rather than being left out)."""
    assert available_providers() == PROVIDERS


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_has_its_adapter_and_its_samples(provider: str) -> None:
    """``handlers.<provider>.ADAPTER`` is this provider's Adapter, and
    ``hookline_testing._<provider>.SAMPLES`` its Samples, whose sources carry every field
    the adapter requires (transport credentials where the ESP signs nothing)."""
    adapter = get_adapter(provider)
    assert isinstance(adapter, Adapter)
    assert adapter.provider == provider
    samples = samples_for(provider)
    assert isinstance(samples, Samples)
    assert samples.provider == provider
    assert samples.events, "a sample module names the ESP events its example_body builds"
    source, _ = credentials(provider)
    assert source.provider == provider
    for field in adapter.required_fields:
        assert getattr(source, field) not in (None, "", (), {}), field
    if not adapter.signs_requests:
        assert source.basic_auth is not None or source.bearer_token is not None


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_has_documented_fixtures(provider: str) -> None:
    """``tests/fixtures/<provider>/`` holds real-shaped bodies and a ``SOURCES.md`` naming
    the documented examples they come from: a provider added without them fails here."""
    directory = FIXTURES / provider
    assert (directory / "SOURCES.md").is_file(), f"{directory}/SOURCES.md is missing"
    bodies = [path for path in directory.iterdir() if path.suffix != ".md"]
    assert bodies, f"no fixture bodies in {directory}"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_example_traffic_verifies_and_normalizes(provider: str) -> None:
    """example_body -> signed_request -> check_content_type -> verify -> parse yields
    well-formed events for this provider and source."""
    at = now()
    result = await accept(
        provider, request_for(provider, samples_for(provider).example_body(), at), at
    )
    assert result.events
    source, _ = credentials(provider)
    for event in result.events:
        assert isinstance(event, EmailEvent)
        assert event.provider == provider
        assert event.source == source.name
        assert isinstance(event.event_type, EventType)
        assert event.occurred_at.tzinfo is not None
        assert event.occurred_at.utcoffset() == timedelta(0)
        assert event.received_at == at
        assert event.dedup_key.startswith(f"{provider}:")
        assert isinstance(event.tags, tuple) and all(isinstance(t, str) for t in event.tags)
        assert isinstance(event.metadata, dict)
        assert event.raw is not None


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_dedup_keys_are_unique_per_seed_and_stable_per_body(provider: str) -> None:
    """Distinct seeds give distinct dedup keys; the same body (re-signed later, as an ESP
    retry would be) gives identical keys."""
    mod = samples_for(provider)
    at = now()
    body = mod.example_body(seed=11)
    first = await accept(provider, request_for(provider, body, at), at)
    later = at + timedelta(seconds=5)
    again = await accept(provider, request_for(provider, body, later), later)
    other = await accept(provider, request_for(provider, mod.example_body(seed=12), at), at)
    keys = [e.dedup_key for e in first.events]
    assert keys == [e.dedup_key for e in again.events]
    assert set(keys).isdisjoint(e.dedup_key for e in other.events)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_batching_providers_give_one_event_per_batched_item(provider: str) -> None:
    """example_body(5) gives five events with five dedup keys where the provider batches
    (or names five recipients); providers declared one event per request refuse count=5
    with ValueError."""
    mod = samples_for(provider)
    if mod.one_event_per_request:
        with pytest.raises(ValueError):
            mod.example_body(5, seed=21)
        return
    body = mod.example_body(5, seed=21)
    at = now()
    events = (await accept(provider, request_for(provider, body, at), at)).events
    assert len(events) == 5
    assert len({e.dedup_key for e in events}) == 5


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def _flip_signature_in_body(body: bytes) -> bytes | None:
    """The body with one character changed inside its signature field, for schemes that
    carry the signature in the body (SNS, Mailgun); None if there is none."""
    try:
        document = json.loads(body)
    except ValueError:
        return None

    def visit(node: Any) -> bool:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.lower() == "signature" and isinstance(value, str) and value:
                    swapped = _other_char(value[0])
                    node[key] = swapped + value[1:]
                    return True
                if visit(value):
                    return True
        if isinstance(node, list):
            return any(visit(item) for item in node)
        return False

    return json.dumps(document).encode() if visit(document) else None


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tampering_or_missing_credentials_is_an_auth_error(provider: str) -> None:
    """Signing providers: a changed signature is refused, and so is a changed body unless
    the scheme signs only a nonce (then the nonce digest changes with the content).
    Basic-auth providers: no credentials is AuthError('missing')."""
    adapter = get_adapter(provider)
    source, _ = credentials(provider)
    at = now()
    request = request_for(provider, samples_for(provider).example_body(seed=31), at)
    context = VerifyContext(now=at)
    if not adapter.signs_requests:
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        with pytest.raises(AuthError) as caught:
            await adapter.verify(replace(request, headers=headers), source, context)
        assert caught.value.reason == "missing"
        return
    signature_headers = {
        name: _flip_text(value) for name, value in request.headers.items() if "signature" in name
    }
    tampered = (
        [replace(request, headers={**request.headers, **signature_headers})]
        if signature_headers
        else []
    )
    in_body = _flip_signature_in_body(request.body)
    if in_body is not None:
        tampered.append(replace(request, body=in_body))
    assert tampered, "no signature found to tamper with"
    for forged in tampered:
        with pytest.raises(AuthError):
            await adapter.verify(forged, source, context)

    original = adapter.parse(request, source, at)
    changed = replace(request, body=_flip(request.body, len(request.body) // 2))
    try:
        await adapter.verify(changed, source, context)
    except AuthError:
        return
    # the signature does not cover the body: the gateway's nonce memory must see the change
    assert original.nonce is not None
    try:
        after = adapter.parse(changed, source, at)
    except PayloadError:
        return
    assert after.nonce_digest != original.nonce_digest


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if get_adapter(p).signs_requests])
async def test_transport_auth_is_checked_on_top_of_a_signature(provider: str) -> None:
    """A source may add basic auth to a signing provider: a correctly signed request
    without it is AuthError('missing'), with wrong credentials 'invalid', with the right
    ones it passes."""
    adapter = get_adapter(provider)
    source, _ = credentials(provider)
    at = now()
    request = request_for(provider, samples_for(provider).example_body(seed=32), at)
    guarded = replace(source, basic_auth="hook:s3cret")
    context = VerifyContext(now=at)
    with pytest.raises(AuthError) as caught:
        await adapter.verify(request, guarded, context)
    assert caught.value.reason == "missing"
    wrong = {**request.headers, "authorization": "Basic " + base64.b64encode(b"hook:x").decode()}
    with pytest.raises(AuthError) as caught:
        await adapter.verify(replace(request, headers=wrong), guarded, context)
    assert caught.value.reason == "invalid"
    right = {
        **request.headers,
        "authorization": "Basic " + base64.b64encode(b"hook:s3cret").decode(),
    }
    await adapter.verify(replace(request, headers=right), guarded, context)


@pytest.mark.parametrize(
    "provider", [p for p in PROVIDERS if "signing_key" in get_adapter(p).required_fields]
)
async def test_a_signing_source_without_its_key_accepts_nothing(provider: str) -> None:
    """Start-up refuses such a source (``required_fields``); should one reach verify
    anyway, a correctly signed request is still refused, never waved through."""
    adapter = get_adapter(provider)
    source, _ = credentials(provider)
    at = now()
    request = request_for(provider, samples_for(provider).example_body(seed=33), at)
    with pytest.raises(AuthError) as caught:
        await adapter.verify(request, replace(source, signing_key=None), VerifyContext(now=at))
    assert caught.value.reason in ("missing", "invalid")


def _other_char(char: str) -> str:
    """A different character even to a case-insensitive hex comparison (Mailgun's 'a3..'
    against 'A3..' is the same signature)."""
    return "0" if char.lower() != "0" else "1"


def _flip_text(value: str) -> str:
    index = len(value) // 2
    return value[:index] + _other_char(value[index]) + value[index + 1 :]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_content_type_is_refused(provider: str) -> None:
    """A content type the provider never sends is a ContentTypeError (HTTP 415)."""
    request = request_for(provider, samples_for(provider).example_body(), now())
    for content_type in ("image/png", ""):
        headers = {**request.headers, "content-type": content_type}
        with pytest.raises(ContentTypeError):
            get_adapter(provider).check_content_type(replace(request, headers=headers))


def _broken_bodies(body: bytes) -> list[bytes]:
    middle = len(body) // 2
    return [
        body[:middle],
        body[: max(len(body) - 3, 1)],
        b"\xff\xfe" + body,
        body[:middle] + b"\xc3\x28" + body[middle:],
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_truncated_and_non_utf8_bodies_are_typed_errors(provider: str) -> None:
    """Truncated and non-UTF-8 bodies, signed where the helper can sign them, end in
    PayloadError or AuthError: never any other exception."""
    adapter = get_adapter(provider)
    source, _ = credentials(provider)
    at = now()
    valid = request_for(provider, samples_for(provider).example_body(seed=41), at)
    for broken in _broken_bodies(valid.body):
        try:
            request = request_for(provider, broken, at)
        except Exception:  # the helper could not sign it: send it with the old signature
            request = replace(valid, body=broken)
        with pytest.raises((PayloadError, AuthError)):
            await adapter.verify(request, source, VerifyContext(now=at))
            adapter.parse(request, source, at)
