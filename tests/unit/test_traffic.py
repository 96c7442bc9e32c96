"""The load-test traffic generator: what it sends must be exactly what each ESP would send.

Every request is checked with the provider's own adapter (``verify`` then ``parse``), the
same code the gateway runs, so a generator bug shows up here rather than as a load-test
failure.
"""

from __future__ import annotations

import random
import tomllib
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from gateway.settings import Settings
from handlers.base import AuthError, SourceSpec, VerifyContext, WebhookRequest
from handlers.events import EmailEvent, EventType
from handlers.registry import PROVIDERS, available_providers, get_adapter
from hookline_testing import SnsSigningMaterial, samples_for
from loadtests.credentials import (
    LoadSource,
    config_toml,
    credentials_json,
    decode_material,
    encode_material,
    make_sources,
    parse_credentials,
)
from loadtests.mix import (
    EventMix,
    event_names,
    events_per_request,
    parse_weights,
)
from loadtests.options import LoadOptions, OptionsError
from loadtests.traffic import SEED_SPACE, TrafficGenerator, TrafficRequest

BASE_URL = "http://127.0.0.1:8000"
#: providers whose signature lives inside the body, so a re-signed redelivery differs in bytes
BODY_SIGNED = {"mailgun", "ses"}

# key generation (RSA for SES and Postal) is the slow part: one source per provider
SOURCES: dict[str, LoadSource] = {s.provider: s for s in make_sources(PROVIDERS, "lt")}


def now() -> datetime:
    return datetime.now(UTC)


async def verified_events(
    request: TrafficRequest | WebhookRequest, spec: SourceSpec
) -> list[EmailEvent]:
    """Run the gateway's adapter on a request: verify (raises AuthError) then parse."""
    if isinstance(request, TrafficRequest):
        request = WebhookRequest("POST", request.url, request.headers, request.body)
    adapter = get_adapter(spec.provider)
    adapter.check_content_type(request)
    moment = now()
    await adapter.verify(request, spec, VerifyContext(now=moment))
    return adapter.parse(request, spec, moment).events


def generator(provider: str, **options: Any) -> TrafficGenerator:
    options.setdefault("rng", random.Random(7))
    return TrafficGenerator([SOURCES[provider]], base_url=BASE_URL, **options)


def test_every_available_provider_has_a_mix() -> None:
    """Load tests cover every provider the registry knows, each with its adapter: the
    tests below iterate over the full PROVIDERS list, so a missing adapter fails here
    and in its own cases instead of silently dropping them."""
    assert available_providers() == PROVIDERS
    for provider in PROVIDERS:
        assert EventType.DELIVERED in event_names(provider), provider


@pytest.mark.parametrize(
    ("provider", "event_type", "esp_event"),
    [
        (provider, event_type, esp_event)
        for provider in PROVIDERS
        for event_type, esp_event in event_names(provider).items()
    ],
)
async def test_mapped_esp_event_normalizes_to_its_event_type(
    provider: str, event_type: EventType, esp_event: str
) -> None:
    """Each entry of the mix table really produces that normalized type in the gateway."""
    source = SOURCES[provider]
    samples = samples_for(provider)
    body = samples.example_body(1, seed=11, event=esp_event)
    request = samples.signed_request(
        source.spec, source.material, body, now=now(), url=BASE_URL + source.path
    )
    events = await verified_events(request, source.spec)
    assert [event.event_type for event in events] == [event_type]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_fresh_requests_verify_parse_and_carry_unique_events(provider: str) -> None:
    """Fresh requests pass the adapter's own verification, carry the advertised number of
    events of the advertised type, and never repeat an event (dedup key)."""
    traffic = generator(provider, batch_size=3)
    seen: set[str] = set()
    for request in traffic.take(15):
        assert request.kind == "fresh"
        assert request.url == f"{BASE_URL}/webhooks/{provider}/lt"
        events = await verified_events(request, SOURCES[provider].spec)
        assert (
            len(events)
            == request.events
            == (1 if samples_for(provider).one_event_per_request else 3)
        )
        assert {event.event_type for event in events} == {request.event_type}
        keys = {event.dedup_key for event in events}
        assert len(keys) == len(events)
        assert not keys & seen
        seen |= keys


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_duplicates_redeliver_earlier_bodies(provider: str) -> None:
    """A duplicate is a re-signed redelivery of an earlier body: it still verifies, and it
    carries exactly the events (dedup keys) of a request sent before it."""
    traffic = generator(provider, batch_size=2, duplicate_ratio=0.5)
    fresh: list[tuple[bytes, frozenset[str]]] = []
    duplicates = 0
    for request in traffic.take(30):
        events = await verified_events(request, SOURCES[provider].spec)
        keys = frozenset(event.dedup_key for event in events)
        if request.kind == "fresh":
            fresh.append((request.body, keys))
            continue
        assert request.kind == "duplicate"
        duplicates += 1
        originals = [body for body, earlier in fresh if earlier == keys]
        assert originals, "a duplicate must repeat the events of an earlier request"
        if provider not in BODY_SIGNED:
            assert request.body in originals
    assert duplicates > 0


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_bad_signature_requests_fail_verification(provider: str) -> None:
    """Bad-signature requests are well-formed but signed with credentials the source does
    not have: the adapter rejects them as invalid, and the expected answer is 401."""
    traffic = generator(provider, bad_signature_ratio=1.0)
    for request in traffic.take(3):
        assert request.kind == "bad_signature"
        assert request.expected_status == 401
        with pytest.raises(AuthError) as failure:
            await verified_events(request, SOURCES[provider].spec)
        assert failure.value.reason == "invalid"


async def test_written_credentials_sign_for_the_written_config() -> None:
    """What ``write-config`` writes fits together: requests signed with the material read
    back from credentials.json verify against the sources read back from hookline.toml."""
    raw = tomllib.loads(config_toml(list(SOURCES.values()), port=9999, log_level="warning"))
    settings = msgspec.convert(raw, Settings)
    assert settings.server.port == 9999
    specs = {source.provider: source.spec() for source in settings.sources}
    assert set(specs) == set(PROVIDERS)
    loaded = parse_credentials(credentials_json(list(SOURCES.values())))
    traffic = TrafficGenerator(loaded, base_url=BASE_URL, rng=random.Random(3))
    for provider in PROVIDERS:
        request = traffic.next(provider)
        events = await verified_events(request, specs[provider])
        assert len(events) == request.events


def test_material_round_trips_through_json() -> None:
    """Text, private keys and the SES signing dataclass survive the credentials file."""
    for source in SOURCES.values():
        encoded = encode_material(source.material)
        decoded = decode_material(msgspec.json.decode(msgspec.json.encode(encoded)))
        assert encode_material(decoded) == encoded


def test_material_decoding_only_builds_hookline_testing_classes() -> None:
    """A tampered credentials file cannot make the loader construct arbitrary classes."""
    with pytest.raises(ValueError, match="not a hookline_testing class"):
        decode_material({"type": "dataclass", "class": "subprocess:Popen", "fields": {}})


def test_credentials_written_before_the_samples_moved_still_load() -> None:
    """A credentials file from before the move names the SES material by its old home,
    ``handlers._signing_ses``: it still decodes to the same signing material."""
    encoded = encode_material(SOURCES["ses"].material)
    assert encoded["class"] == "hookline_testing._ses:SnsSigningMaterial"
    legacy = {**encoded, "class": "handlers._signing_ses:SnsSigningMaterial"}
    decoded = decode_material(msgspec.json.decode(msgspec.json.encode(legacy)))
    assert isinstance(decoded, SnsSigningMaterial)
    assert encode_material(decoded) == encoded


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_seeds_at_the_top_of_the_range_still_parse(provider: str) -> None:
    """Some example bodies derive timestamps from the seed; the whole seed range is valid,
    including the wrap back to zero."""
    traffic = generator(provider, seed_start=SEED_SPACE - 1, batch_size=2)
    for request in traffic.take(2):
        assert len(await verified_events(request, SOURCES[provider].spec)) == request.events


def test_event_mix_follows_the_weights() -> None:
    """Types are drawn in proportion to their weights."""
    mix = EventMix.for_provider(
        "sendgrid", {EventType.DELIVERED: 3.0, EventType.BOUNCED: 1.0, EventType.OPENED: 0.0}
    )
    rng = random.Random(1)
    picks = [mix.pick(rng) for _ in range(4000)]
    delivered = sum(1 for event_type, _ in picks if event_type is EventType.DELIVERED)
    assert {name for _, name in picks} == {"delivered", "bounce"}
    assert 0.72 < delivered / len(picks) < 0.78


def test_event_mix_skips_types_a_provider_cannot_send() -> None:
    """Postmark has no deferral event: it sends only the other weighted types, and a mix
    of nothing it can send is an error."""
    mix = EventMix.for_provider("postmark", {EventType.DELIVERED: 1.0, EventType.DEFERRED: 5.0})
    assert mix.choices == ((EventType.DELIVERED, "Delivery"),)
    with pytest.raises(ValueError, match="none of the weighted"):
        EventMix.for_provider("postmark", {EventType.DEFERRED: 1.0})


def test_parse_weights() -> None:
    """The weight syntax is ``type=weight`` pairs; mistakes are named."""
    assert parse_weights("delivered=60, opened=2.5") == {
        EventType.DELIVERED: 60.0,
        EventType.OPENED: 2.5,
    }
    with pytest.raises(ValueError, match="unknown event type 'delivery'"):
        parse_weights("delivery=1")
    with pytest.raises(ValueError, match="not a number"):
        parse_weights("delivered=many")
    with pytest.raises(ValueError, match="positive weight"):
        parse_weights("delivered=0")


def test_batch_size_applies_to_batching_providers_only() -> None:
    """Mailgun, Postmark and Postal send one event per request whatever is asked."""
    assert events_per_request("sendgrid", 50) == 50
    assert events_per_request("ses", 50) == 50
    assert events_per_request("mailgun", 50) == 1
    with pytest.raises(ValueError):
        events_per_request("sendgrid", 0)


def test_generator_rejects_impossible_ratios() -> None:
    """Ratios are shares of requests: each within [0, 1], together at most 1."""
    with pytest.raises(ValueError, match="add up"):
        generator("sendgrid", duplicate_ratio=0.6, bad_signature_ratio=0.6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        generator("sendgrid", duplicate_ratio=1.5)


def _request(kind: str, events: int = 2) -> TrafficRequest:
    return TrafficRequest(
        provider="sendgrid",
        source="lt",
        kind=kind,  # type: ignore[arg-type]
        event_type=EventType.DELIVERED,
        events=events,
        url=BASE_URL + "/webhooks/sendgrid/lt",
        path="/webhooks/sendgrid/lt",
        headers={},
        body=b"[]",
    )


def test_response_check() -> None:
    """A 200 must acknowledge every event; a forged request must get 401, nothing else."""
    assert _request("fresh").check(200, b'{"accepted": 2, "duplicates": 0}') is None
    assert _request("duplicate").check(200, b'{"accepted": 2, "duplicates": 2}') is None
    assert "accepted=2" in (_request("fresh").check(200, b'{"accepted": 1}') or "")
    assert "expected HTTP 200, got 503" in (_request("fresh").check(503, b"busy") or "")
    assert _request("bad_signature").check(401, b"{}") is None
    assert "expected HTTP 401, got 200" in (_request("bad_signature").check(200, b"{}") or "")
    assert _request("fresh").name == "sendgrid"
    assert _request("bad_signature").name == "sendgrid bad_signature"


def test_load_options_from_environment() -> None:
    """LOADTEST_* variables become typed options; bad values name the variable."""
    options = LoadOptions.from_env(
        {
            "LOADTEST_CREDENTIALS": "/tmp/x/credentials.json",
            "LOADTEST_PROVIDERS": "sendgrid:3, mailgun",
            "LOADTEST_BATCH_SIZE": "25",
            "LOADTEST_DUPLICATE_RATIO": "0.1",
            "LOADTEST_BAD_SIGNATURE_RATIO": "0.05",
            "LOADTEST_EVENT_WEIGHTS": "delivered=1",
            "LOADTEST_SEED": "42",
        }
    )
    assert str(options.credentials) == "/tmp/x/credentials.json"
    assert options.providers == {"sendgrid": 3, "mailgun": 1}
    assert (options.batch_size, options.duplicate_ratio, options.seed) == (25, 0.1, 42)
    assert options.event_weights == {EventType.DELIVERED: 1.0}
    assert options.task_weights(["mailgun", "sendgrid", "ses"]) == {"sendgrid": 3, "mailgun": 1}
    assert LoadOptions.from_env({}).task_weights(["ses"]) == {"ses": 1}
    with pytest.raises(OptionsError, match="LOADTEST_BATCH_SIZE"):
        LoadOptions.from_env({"LOADTEST_BATCH_SIZE": "0"})
    with pytest.raises(OptionsError, match="LOADTEST_DUPLICATE_RATIO"):
        LoadOptions.from_env({"LOADTEST_DUPLICATE_RATIO": "lots"})
    with pytest.raises(OptionsError, match="must not exceed 1"):
        LoadOptions.from_env(
            {"LOADTEST_DUPLICATE_RATIO": "0.7", "LOADTEST_BAD_SIGNATURE_RATIO": "0.7"}
        )
    with pytest.raises(OptionsError, match="no source for"):
        options.task_weights(["ses"])


@pytest.mark.parametrize(
    ("provider", "event_type"),
    [(provider, event_type) for provider in PROVIDERS for event_type in event_names(provider)],
)
async def test_fresh_events_are_dated_by_the_generators_clock(
    provider: str, event_type: EventType
) -> None:
    """Load-test and demo traffic is dated now (the generator's clock), not on a fixed past
    date: every event of every type parses with its time within a minute of the clock, so
    ``--since`` windows find it and the event-delay histogram sees no years-old events."""
    moment = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    traffic = generator(provider, batch_size=2, clock=lambda: moment)
    request = traffic.fresh(provider, event_type)
    assert request.event_type == event_type and request.kind == "fresh"
    webhook = WebhookRequest("POST", request.url, request.headers, request.body)
    adapter = get_adapter(provider)
    await adapter.verify(webhook, SOURCES[provider].spec, VerifyContext(now=moment))
    events = adapter.parse(webhook, SOURCES[provider].spec, moment).events
    assert events and {event.event_type for event in events} == {event_type}
    for event in events:
        assert abs((event.occurred_at - moment).total_seconds()) < 60, event.occurred_at
