"""Property-based fuzzing of every adapter: whatever the body, only typed errors.

Random bytes, random JSON values (hostile leaves included: NUL, lone surrogates, huge
strings and numbers, odd types), randomly mutated example bodies (a node replaced, removed,
retyped or nested very deeply, also inside JSON carried in a string such as an SNS
``Message`` or a form field), duplicated JSON keys, and batches mixing good and bad items
are sent to ``verify`` (with a valid source) and ``parse``. The only exceptions allowed
are ``PayloadError``, ``AuthError`` and ``ContentTypeError``; whatever parses must be
well-typed ``EmailEvent``s, and every rejected batch item must be refused again by
``parse_item`` (replay uses the same normalization).

Every provider in ``handlers.registry.PROVIDERS`` is fuzzed; a provider without an adapter
module fails the suite. Budgets are small in the normal run; ``make fuzz`` sets
``HYPOTHESIS_PROFILE=deep`` and runs the same properties with many more examples.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers._common import MAX_JSON_DEPTH
from handlers.base import (
    AuthError,
    ContentTypeError,
    ParseResult,
    PayloadError,
    RejectedItem,
    SourceSpec,
    VerifyContext,
    WebhookRequest,
)
from handlers.events import EmailEvent
from handlers.registry import PROVIDERS, get_adapter
from hookline_testing import BatchItems, Samples, samples_for

TYPED = (PayloadError, AuthError, ContentTypeError)
FORM = "application/x-www-form-urlencoded"

settings.register_profile(
    "fuzz",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: the deep profile (``make fuzz`` sets HYPOTHESIS_PROFILE=deep): every property runs this
#: many times its normal budget
_SCALE = 60 if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else 1


def budget(examples: int) -> settings:
    """About ``examples`` per provider in the normal run (all properties together take a
    few seconds per adapter); ``_SCALE`` times more under the deep profile."""
    return settings(settings.get_profile("fuzz"), max_examples=examples * _SCALE)


@functools.cache
def credentials(provider: str) -> tuple[SourceSpec, Any]:
    source, material = samples_for(provider).make_source(name="fuzz")
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
    request = samples_for(provider).signed_request(
        source, material, samples_for(provider).example_body(), now=datetime.now(UTC)
    )
    assert isinstance(request, WebhookRequest)
    return request


def check_result(provider: str, result: ParseResult) -> None:
    """Parsed events are well-typed (they survive a typed round trip through msgspec);
    every rejected item is typed and is refused again when replayed alone."""
    adapter = get_adapter(provider)
    source, _ = credentials(provider)
    for event in result.events:
        msgspec.json.decode(msgspec.json.encode(event), type=EmailEvent)
        assert event.occurred_at.tzinfo is not None
        assert event.dedup_key
    for rejected in result.rejected:
        assert isinstance(rejected, RejectedItem)
        assert isinstance(rejected.index, int) and rejected.reason
        with pytest.raises(PayloadError):
            adapter.parse_item(rejected.raw, source, datetime.now(UTC))


def signed(provider: str, body: bytes) -> WebhookRequest:
    """The example request with ``body``, re-signed when the provider's helper can sign it
    (otherwise it goes out with the old signature)."""
    source, material = credentials(provider)
    request = replace(example_request(provider), body=body)
    with contextlib.suppress(Exception):
        request = samples_for(provider).signed_request(
            source, material, body, now=datetime.now(UTC)
        )
    return request


def exercise(provider: str, body: bytes) -> ParseResult | None:
    """verify then parse (as the gateway does), and parse alone (what a bug in verify
    would expose): only typed errors may come out. The result of parse, if it parsed."""
    adapter = get_adapter(provider)
    source, _ = credentials(provider)
    at = datetime.now(UTC)
    request = signed(provider, body)
    try:
        adapter.check_content_type(request)
        loop().run_until_complete(adapter.verify(request, source, VerifyContext(now=at)))
        check_result(provider, adapter.parse(request, source, at))
    except TYPED:
        pass
    try:
        result = adapter.parse(request, source, at)
    except PayloadError:
        return None
    check_result(provider, result)
    return result


# --- hostile values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RawJson:
    """JSON text written as is: numbers ``json.dumps`` cannot produce (1e400), and values
    nested deeper than Python's encoders can recurse."""

    text: str
    depth: int = 0


HUGE_NUMBERS = ["1e400", "-1e400", "1e-400", "-0", "-0.0", str(2**80), str(-(2**80)), "1" * 400]
#: text a JSON decoder takes: NUL, huge, bidi controls, numbers and NaN as strings
hostile_text = st.sampled_from(
    ["\x00", "a\x00b", "NaN", "Infinity", "-0", "1e400", "x" * 100_000, "\u202e\ufeff", ""]
)
#: lone surrogates: JSON can carry them only escaped (\ud800), and the decoder refuses them
surrogates = st.sampled_from(["\ud800", "\udfff\ud800", "a\udc80"])
decodable_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | hostile_text
)


def _trees(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=12), children, max_size=4)
        ),
        max_leaves=20,
    )


#: values every JSON decoder represents (a body made of them is well-formed JSON)
decodable_values = _trees(decodable_leaves)
#: and values it may refuse: numbers out of range (1e400, 400 digits), lone surrogates
json_values = _trees(decodable_leaves | surrogates | st.sampled_from(HUGE_NUMBERS).map(RawJson))


def deep_value(depth: int, kind: str) -> RawJson:
    """A value nested ``depth`` containers deep: arrays, objects or both alternating."""
    opens: list[str] = []
    for level in range(depth):
        opens.append("[" if kind == "list" or (kind == "mixed" and level % 2) else '{"k":')
    closes = ["]" if token == "[" else "}" for token in reversed(opens)]
    return RawJson("".join(opens) + "1" + "".join(closes), depth)


deep_values = st.builds(
    deep_value,
    st.integers(MAX_JSON_DEPTH - 2, MAX_JSON_DEPTH + 2) | st.integers(60, 5000),
    st.sampled_from(["list", "dict", "mixed"]),
)


def dumps(value: Any) -> str:
    """JSON text of ``value`` (``json.dumps``: lone surrogates and NUL escaped), with each
    ``RawJson`` written verbatim where it stands."""
    raws: list[str] = []

    def mark(node: Any) -> Any:
        if isinstance(node, RawJson):
            raws.append(node.text)
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(node, dict):
            return {key: mark(item) for key, item in node.items()}
        if isinstance(node, list):
            return [mark(item) for item in node]
        return node

    text = json.dumps(mark(value))
    return re.sub(r'"\\u0000raw(\d+)\\u0000"', lambda m: raws[int(m.group(1))], text)


# --- every provider is fuzzed -----------------------------------------------------------------


def test_every_registered_provider_has_an_adapter_to_fuzz() -> None:
    """The fuzzers iterate over the full PROVIDERS tuple: each must import, expose its
    ADAPTER and the helpers that make its traffic (a missing adapter fails here instead of
    being skipped)."""
    for provider in PROVIDERS:
        adapter = get_adapter(provider)
        assert adapter.provider == provider
        assert isinstance(samples_for(provider), Samples)


@pytest.mark.parametrize("provider", PROVIDERS)
@budget(30)
@given(body=st.binary(max_size=512))
def test_random_bytes_only_raise_typed_errors(provider: str, body: bytes) -> None:
    """Arbitrary bytes are refused with a typed error (or parse into valid events)."""
    exercise(provider, body)


@pytest.mark.parametrize("provider", PROVIDERS)
@budget(50)
@given(value=json_values)
def test_random_json_only_raises_typed_errors(provider: str, value: Any) -> None:
    """Arbitrary JSON documents (any shape, NUL, escaped lone surrogates, huge strings and
    numbers such as 1e400 and 2**80)."""
    exercise(provider, dumps(value).encode())


@pytest.mark.parametrize("provider", PROVIDERS)
@budget(10)
@given(value=deep_values, wrap=st.booleans())
def test_deeply_nested_bodies_are_payload_or_auth_errors(
    provider: str, value: RawJson, wrap: bool
) -> None:
    """A body (for Mandrill: the mandrill_events field) nested deeper than MAX_JSON_DEPTH is
    refused with PayloadError by parse, and verify + parse refuse it with PayloadError or
    AuthError (where the signature lives inside the body), never a RecursionError; one
    within the bound is a typed error or parses."""
    document = [value] if wrap else value
    depth = value.depth + int(wrap)
    tree = {"mandrill_events": document} if provider == "mandrill" else document
    body = _encode_tree(provider, tree)
    if depth <= MAX_JSON_DEPTH:
        exercise(provider, body)
        return
    adapter = get_adapter(provider)
    source, _ = credentials(provider)
    at = datetime.now(UTC)
    request = signed(provider, body)
    with pytest.raises((PayloadError, AuthError)):
        loop().run_until_complete(adapter.verify(request, source, VerifyContext(now=at)))
        adapter.parse(request, source, at)
    with pytest.raises(PayloadError):
        adapter.parse(request, source, at)


#: header values as an ASGI server hands them over (bytes decoded as latin-1)
header_values = (
    st.text(alphabet=st.characters(max_codepoint=255), max_size=40)
    | hostile_text.filter(lambda text: all(ord(char) < 256 for char in text))
    | st.sampled_from(HUGE_NUMBERS)
)


@pytest.mark.parametrize("provider", PROVIDERS)
@budget(30)
@given(data=st.data())
def test_hostile_header_values_only_raise_typed_errors(provider: str, data: Any) -> None:
    """The example request with one header (signature, timestamp, id, authorization,
    content type) replaced by hostile text, huge numbers or removed: verify and parse
    raise only typed errors."""
    adapter = get_adapter(provider)
    source, _ = credentials(provider)
    request = example_request(provider)
    headers = dict(request.headers)
    name = data.draw(st.sampled_from(sorted(headers)), label="header")
    if data.draw(st.booleans(), label="remove"):
        del headers[name]
    else:
        headers[name] = data.draw(header_values, label="value")
    request = replace(request, headers=headers)
    at = datetime.now(UTC)
    try:
        adapter.check_content_type(request)
        loop().run_until_complete(adapter.verify(request, source, VerifyContext(now=at)))
        check_result(provider, adapter.parse(request, source, at))
    except TYPED:
        pass


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
        return dumps(_wrap(node.value))
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
        {str(k): v if isinstance(v, str) else dumps(v) for k, v in tree.items()}
    ).encode()


@functools.cache
def codec(provider: str) -> Codec:
    content_type = example_request(provider).content_type
    if content_type in ("application/json", "text/plain"):
        return Codec(lambda b: _unwrap(json.loads(b)), lambda t: dumps(_wrap(t)).encode())
    assert content_type == FORM, provider
    return Codec(
        lambda b: _unwrap(dict(parse_qsl(b.decode(), keep_blank_values=True))),
        lambda t: _form_encode(_wrap(t)),
    )


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


def _encode_tree(provider: str, tree: Any) -> bytes:
    try:
        return codec(provider).encode(tree)
    except (TypeError, ValueError, AttributeError):  # e.g. the form root replaced by a list
        return dumps(_wrap(tree)).encode()


def _example(provider: str, data: Any) -> bytes:
    mod = samples_for(provider)
    count = data.draw(st.sampled_from([1, 3]), label="count")
    seed = data.draw(st.integers(0, 50), label="seed")
    try:
        body: bytes = mod.example_body(count, seed=seed)
    except ValueError:
        body = mod.example_body(1, seed=seed)
    return body


@pytest.mark.parametrize("provider", PROVIDERS)
@budget(70)
@given(data=st.data())
def test_mutated_example_bodies_only_raise_typed_errors(provider: str, data: Any) -> None:
    """A valid body with one node replaced by random or hostile JSON (or a deeply nested
    value), or removed, then re-signed: the adapter either normalizes it into well-typed
    events (rejecting bad batch items) or raises a typed error; a JSON body that became
    deeper than MAX_JSON_DEPTH is always refused by parse."""
    tree = codec(provider).decode(_example(provider, data))
    path = data.draw(st.sampled_from(_paths(tree)), label="path")
    action = data.draw(st.sampled_from(["replace", "delete", "deep"]), label="action")
    if action == "delete" and (not path or path[-1] is Nested):
        action = "replace"
    value = None
    if action == "replace":
        value = data.draw(json_values, label="value")
    elif action == "deep":
        value = data.draw(deep_values, label="value")
    body = _encode_tree(provider, _mutate(tree, path, action, value))
    exercise(provider, body)
    in_json_body = example_request(provider).content_type != FORM and Nested not in path
    if isinstance(value, RawJson) and in_json_body and len(path) + value.depth > MAX_JSON_DEPTH:
        # as mutated (the signing helper of SNS rebuilds the envelope it signs)
        source, _ = credentials(provider)
        request = replace(example_request(provider), body=body)
        with pytest.raises(PayloadError):
            get_adapter(provider).parse(request, source, datetime.now(UTC))


_KEY = re.compile(r'"([A-Za-z_\-]+)": ?')


@pytest.mark.parametrize("provider", PROVIDERS)
@budget(30)
@given(data=st.data())
def test_duplicated_json_keys_keep_the_last_value(provider: str, data: Any) -> None:
    """An object of the example body with one of its keys written twice, a random or
    hostile value first and the original last: the last value wins, so the events are
    exactly the original body's (a repeated form field: the last one wins too)."""
    body = _example(provider, data)
    text = body.decode()
    keys = list(_KEY.finditer(text))
    if keys:
        key = data.draw(st.sampled_from(keys), label="key")
        value = dumps(data.draw(decodable_values, label="value"))
        duplicated = f'{text[: key.start()]}"{key.group(1)}": {value}, {text[key.start() :]}'
        twice = duplicated.encode()
    else:  # a form body: the field twice, a random value first
        twice = urlencode({"mandrill_events": dumps(data.draw(decodable_values))}).encode()
        twice += b"&" + body
    adapter = get_adapter(provider)
    source, _ = credentials(provider)
    at = datetime.now(UTC)
    request = signed(provider, twice)
    loop().run_until_complete(adapter.verify(request, source, VerifyContext(now=at)))
    # the same headers (an id derived from the body, as Resend's is) with the original body
    original = adapter.parse(replace(request, body=body), source, at)
    assert adapter.parse(request, source, at).events == original.events


# --- batches mixing good and bad items ---------------------------------------------------------


#: batching providers, and where their sample bodies keep the items
BATCH_ITEMS: dict[str, BatchItems] = {
    provider: items
    for provider in PROVIDERS
    if (items := samples_for(provider).batch_items) is not None
}
#: one event (or one message with several recipients) per request: a malformed event is a
#: malformed body (400)
SINGLE_EVENT = tuple(provider for provider in PROVIDERS if provider not in BATCH_ITEMS)

#: never a valid value for a required string or object field
bad_values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.lists(decodable_values, max_size=3)
)


@pytest.mark.parametrize("provider", BATCH_ITEMS)
@budget(40)
@given(data=st.data())
def test_batch_with_k_bad_items_rejects_exactly_those(provider: str, data: Any) -> None:
    """A batch of n items of which k are broken (replaced by a non-object, or a required
    field given a value of the wrong type): exactly those k are rejected, with their index,
    and the other n - k items yield the events they yield on their own."""
    shape = BATCH_ITEMS[provider]
    adapter = get_adapter(provider)
    source, _ = credentials(provider)
    n = data.draw(st.integers(1, 8), label="n")
    items = shape.items(samples_for(provider).example_body(n, seed=data.draw(st.integers(0, 99))))
    bad = sorted(data.draw(st.sets(st.integers(0, n - 1)), label="bad"))
    for index in bad:
        if data.draw(st.booleans(), label="whole item"):
            items[index] = data.draw(bad_values | hostile_text, label="item")
        else:
            target, key = shape.required(items[index])
            target[key] = data.draw(bad_values, label=key)
    at = datetime.now(UTC)
    request = signed(provider, shape.body(items, dumps))
    loop().run_until_complete(adapter.verify(request, source, VerifyContext(now=at)))
    result = adapter.parse(request, source, at)
    check_result(provider, result)
    assert [rejected.index for rejected in result.rejected] == bad
    assert [rejected.raw for rejected in result.rejected] == [items[i] for i in bad]
    good = [adapter.parse_item(items[i], source, at) for i in range(n) if i not in bad]
    assert result.events == [event for events in good for event in events]
    assert len(result.events) == n - len(bad)


@pytest.mark.parametrize("provider", SINGLE_EVENT)
def test_single_event_providers_refuse_a_malformed_event_as_a_whole(provider: str) -> None:
    """Providers that send one event per request have no items to isolate: their body
    replaced by a scalar is a PayloadError (400), and parse_item has nothing to replay."""
    adapter = get_adapter(provider)
    source, _ = credentials(provider)
    at = datetime.now(UTC)
    with pytest.raises(PayloadError):
        adapter.parse(replace(example_request(provider), body=b"7"), source, at)
    with pytest.raises(PayloadError):
        adapter.parse_item({"event": "delivered"}, source, at)
