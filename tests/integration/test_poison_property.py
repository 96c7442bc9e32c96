"""Property: whatever values a signed event carries, the storage path never gets stuck.

Hypothesis fills every ``EmailEvent`` field with hostile text (NUL, lone surrogates, 3-6 kB
strings that do not compress), numbers of any size and nested JSON, and writes batches
through the gateway's real writer (real PostgreSQL, the write hooks of a real runtime), with
and without ``storable_events`` first (a spool written by an older version skips it). Every
event ends up stored or quarantined, the call never raises, the storage breaker never opens,
and a clean event right after is stored.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.app import build_runtime
from gateway.runtime import Runtime
from gateway.storage.storable import storable_events
from handlers.events import BounceClass, EmailEvent, EventType
from observability.metrics import Metrics
from tests.integration.conftest import build_settings

_plain = st.text(max_size=20)
_nasty = st.lists(
    st.one_of(
        st.sampled_from(["\x00", "\ud800", "\udfff", "\ufffd", "'", '"', "\\", "%", "İ"]),
        st.characters(exclude_categories=()),  # surrogates included
    ),
    max_size=12,
).map("".join)
_long = st.binary(min_size=1500, max_size=3000).map(bytes.hex)
hostile_text = st.one_of(_plain, _nasty, _long)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=2**64, max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, hostile_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(hostile_text, inner, max_size=3)
    ),
    max_leaves=6,
)
optional_text = st.one_of(st.none(), hostile_text)


@st.composite
def events(draw: st.DrawFn) -> EmailEvent:
    return EmailEvent(
        provider="sendgrid",
        source="main",
        event_type=draw(st.sampled_from(list(EventType))),
        occurred_at=draw(st.datetimes(timezones=st.just(UTC))),
        received_at=datetime.now(UTC),
        recipient=draw(optional_text),
        message_id=draw(optional_text),
        dedup_key=draw(hostile_text),
        provider_event_id=draw(optional_text),
        esp_event=draw(optional_text),
        bounce_class=draw(st.one_of(st.none(), st.sampled_from(list(BounceClass)))),
        reason=draw(optional_text),
        smtp_status=draw(optional_text),
        diagnostic=draw(optional_text),
        url=draw(optional_text),
        user_agent=draw(optional_text),
        ip=draw(optional_text),
        machine_open=draw(st.booleans()),
        campaign=draw(optional_text),
        tags=tuple(draw(st.lists(hostile_text, max_size=3))),
        metadata=draw(st.dictionaries(hostile_text, json_values, max_size=3)),
        raw=draw(json_values),
    )


async def _fate(pool: asyncpg.Pool, keys: list[str]) -> tuple[set[str], set[str]]:
    stored = await pool.fetch("SELECT dedup_key FROM event_keys WHERE dedup_key = ANY($1)", keys)
    kept = await pool.fetch("SELECT dedup_key FROM quarantine WHERE dedup_key = ANY($1)", keys)
    return {r["dedup_key"] for r in stored}, {r["dedup_key"] for r in kept}


def test_hostile_events_are_stored_or_quarantined_never_stuck(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """Any values: each event stored or quarantined, no exception, breaker closed."""
    loop = asyncio.new_event_loop()
    runtime: Runtime = loop.run_until_complete(
        build_runtime(build_settings(fresh_db_url, tmp_path), Metrics(), serve_workers=False)
    )
    writer = runtime.ingestor.writer
    assert writer is not None
    counter = iter(range(10**9))

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(batch=st.lists(events(), min_size=1, max_size=6), sanitize=st.booleans())
    def check(batch: list[EmailEvent], sanitize: bool) -> None:
        written = list(storable_events(batch)) if sanitize else batch

        async def run() -> None:
            new = await writer.write(written)
            keys = [e.dedup_key for e in storable_events(written)]
            stored, kept = await _fate(runtime.database.pool, keys)
            quarantined = getattr(new, "quarantined", set())
            for event, key in zip(written, keys, strict=True):
                assert key in stored or key in kept or event.dedup_key in quarantined, key
            assert runtime.storage_breaker.state == "closed"
            clean = EmailEvent(
                provider="sendgrid",
                source="main",
                event_type=EventType.DELIVERED,
                occurred_at=datetime.now(UTC),
                received_at=datetime.now(UTC),
                recipient="a@example.com",
                message_id="m",
                dedup_key=f"sendgrid:clean-{next(counter)}",
            )
            assert await writer.write([clean]) == {clean.dedup_key}

        loop.run_until_complete(run())

    try:
        check()
    finally:
        loop.run_until_complete(runtime.close())
        loop.close()
