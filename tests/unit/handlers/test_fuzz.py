"""Property-based fuzzing of every adapter: whatever the body, only typed errors.

Random bytes, random JSON values and randomly mutated example bodies (a node replaced,
removed or retyped, also inside JSON carried in a string such as an SNS ``Message`` or a
form field) are sent to ``verify`` (with a valid source) and ``parse``. The only
exceptions allowed are ``PayloadError``, ``AuthError`` and ``ContentTypeError``; whatever
parses must be a well-typed ``EmailEvent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers.base import (
    AuthError,
    ContentTypeError,
    PayloadError,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import EmailEvent
from handlers.registry import available_providers, get_adapter

AVAILABLE = available_providers()
TYPED = (PayloadError, AuthError, ContentTypeError)
#: about 150 examples per adapter in all, most of them on structure-aware mutations
_SETTINGS: dict[str, Any] = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
FUZZ_BYTES = settings(max_examples=30, **_SETTINGS)
FUZZ_JSON = settings(max_examples=50, **_SETTINGS)
FUZZ_MUTATIONS = settings(max_examples=70, **_SETTINGS)


def module(provider: str) -> ModuleType:
    return importlib.import_module(f"handlers.{provider}")


@functools.cache
def credentials(provider: str) -> tuple[SourceSpec, Any]:
    source, material = module(provider).make_test_source(name="fuzz")
    return source, material


@functools.cache
def loop() -> asyncio.AbstractEventLoop:
    """A private loop: hypothesis drives plain functions, verify is a coroutine."""
    return asyncio.new_event_loop()


@pytest.fixture(scope="module", autouse=True)
def _close_loop() -> Iterator[None]:
    yield
    loop().close()
    loop.cache_clear()


@functools.cache
def example_request(provider: str) -> WebhookRequest:
    source, material = credentials(provider)
    request = module(provider).signed_request(
        source, material, module(provider).example_body(), now=datetime.now(UTC)
    )
    assert isinstance(request, WebhookRequest)
    return request


def check_events(events: list[EmailEvent]) -> None:
    """Parsed events are well-typed: they survive a typed round trip through msgspec."""
    for event in events:
        msgspec.json.decode(msgspec.json.encode(event), type=EmailEvent)
        assert event.occurred_at.tzinfo is not None
        assert event.dedup_key


def exercise(provider: str, body: bytes, *, sign: bool) -> None:
    """verify then parse (as the gateway does), and parse alone (what a bug in verify
    would expose): only typed errors may come out."""
    adapter = get_adapter(provider)
    source, material = credentials(provider)
    at = datetime.now(UTC)
    request = replace(example_request(provider), body=body)
    if sign:
        # when the helper cannot sign this body, it goes out with the old signature
        with contextlib.suppress(Exception):
            request = module(provider).signed_request(source, material, body, now=at)
    try:
        adapter.check_content_type(request)
        loop().run_until_complete(adapter.verify(request, source, VerifyContext(now=at)))
        check_events(adapter.parse(request, source, at).events)
    except TYPED:
        pass
    with contextlib.suppress(PayloadError):
        check_events(adapter.parse(request, source, at).events)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("provider", AVAILABLE)
@FUZZ_BYTES
@given(body=st.binary(max_size=512))
def test_random_bytes_only_raise_typed_errors(provider: str, body: bytes) -> None:
    """Arbitrary bytes are refused with a typed error (or parse into valid events)."""
    exercise(provider, body, sign=True)


@pytest.mark.parametrize("provider", AVAILABLE)
@FUZZ_JSON
@given(value=json_values)
def test_random_json_only_raises_typed_errors(provider: str, value: Any) -> None:
    """Arbitrary JSON documents (any shape, NaN and huge numbers included)."""
    exercise(provider, json.dumps(value).encode(), sign=True)


# --- structure-aware mutation of the provider's own example bodies ---------------------------


@dataclass
class Nested:
    """JSON carried inside a string (an SNS Message, a Mandrill form field)."""

    value: Any


def _unwrap(node: Any) -> Any:
    if isinstance(node, str) and node[:1] in ("{", "["):
        try:
            return Nested(_unwrap(json.loads(node)))
        except ValueError:
            return node
    if isinstance(node, dict):
        return {key: _unwrap(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_unwrap(item) for item in node]
    return node


def _wrap(node: Any) -> Any:
    if isinstance(node, Nested):
        return json.dumps(_wrap(node.value))
    if isinstance(node, dict):
        return {key: _wrap(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_wrap(item) for item in node]
    return node


@dataclass
class Codec:
    """How one provider's bodies are encoded, so mutations keep the transport format."""

    decode: Callable[[bytes], Any]
    encode: Callable[[Any], bytes]


def _form_encode(tree: Any) -> bytes:
    return urlencode(
        {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in tree.items()}
    ).encode()


@functools.cache
def codec(provider: str) -> Codec | None:
    content_type = example_request(provider).content_type
    if content_type in ("application/json", "text/plain"):
        return Codec(lambda b: _unwrap(json.loads(b)), lambda t: json.dumps(_wrap(t)).encode())
    if content_type == "application/x-www-form-urlencoded":
        return Codec(
            lambda b: _unwrap(dict(parse_qsl(b.decode(), keep_blank_values=True))),
            lambda t: _form_encode(_wrap(t)),
        )
    return None


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, Nested):
        found += _paths(node.value, (*prefix, Nested))
    elif isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(tree: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if head is Nested:
        return Nested(_mutate(tree.value, rest, action, value))
    copy = dict(tree) if isinstance(tree, dict) else list(tree)
    if not rest and action == "delete":
        del copy[head]
        return copy
    copy[head] = _mutate(copy[head], rest, action, value)
    return copy


@pytest.mark.parametrize("provider", AVAILABLE)
@FUZZ_MUTATIONS
@given(data=st.data())
def test_mutated_example_bodies_only_raise_typed_errors(provider: str, data: Any) -> None:
    """A valid body with one node replaced by random JSON, or removed, then re-signed:
    the adapter either normalizes it into well-typed events or raises a typed error."""
    mod = module(provider)
    count = data.draw(st.sampled_from([1, 3]), label="count")
    try:
        body = mod.example_body(count, seed=data.draw(st.integers(0, 50), label="seed"))
    except ValueError:
        body = mod.example_body(1)
    body_codec = codec(provider)
    if body_codec is None:
        exercise(provider, body, sign=True)
        return
    tree = body_codec.decode(body)
    paths = _paths(tree)
    path = data.draw(st.sampled_from(paths), label="path")
    action = data.draw(st.sampled_from(["replace", "delete"]), label="action")
    if action == "delete" and (not path or path[-1] is Nested):
        action = "replace"
    value = data.draw(json_values, label="value") if action == "replace" else None
    mutated = _mutate(tree, path, action, value)
    try:
        encoded = body_codec.encode(mutated)
    except (TypeError, ValueError, AttributeError):  # e.g. the form root replaced by a list
        encoded = json.dumps(_wrap(mutated)).encode()
    exercise(provider, encoded, sign=True)
