"""Issue #16: one event PostgreSQL cannot store must never stop storage.

Against real PostgreSQL: hostile values sent through a real gateway are stored (made
storable); a batch that PostgreSQL still refuses in part stores its good events and
quarantines the poison one; the drainer drains past a poison record; the storage breaker
stays closed through all of it; a quarantined record replays once its cause is removed.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from gateway.ingest.drainer import SpoolDrainer
from gateway.ingest.isolation import IsolatingWriter, StoredKeys
from gateway.ingest.spool import Spool, encode_record
from gateway.resilience import AsyncCircuitBreaker, CircuitOpenError
from gateway.storage.data_errors import is_data_error
from gateway.storage.pool import create_pool
from gateway.storage.quarantine import QuarantineStore
from gateway.storage.storable import INDEXED_MAX_CHARS, storable_events
from gateway.storage.store import EventStore
from handlers.events import EmailEvent, EventType
from hookline_testing import samples_for
from observability.metrics import Metrics

SPEC, KEY = samples_for("sendgrid").make_source("main")
SOURCES = [{"provider": "sendgrid", "name": "main", "signing_key": SPEC.signing_key}]

#: a trigger that makes PostgreSQL refuse (SQLSTATE 22023, a data error) any event whose
#: reason is 'poison': a stand-in for a value storable.py does not know about yet
REFUSE_POISON = """
CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.reason = 'poison' THEN
        RAISE EXCEPTION 'refused by test trigger' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_poison BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION refuse_poison();
"""


def event(key: str, **fields: Any) -> EmailEvent:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "provider": "sendgrid",
        "source": "main",
        "event_type": EventType.DELIVERED,
        "occurred_at": now,
        "received_at": now,
        "recipient": f"{key}@example.com",
        "message_id": f"m-{key}",
        "dedup_key": f"sendgrid:{key}",
        "raw": {"sg_event_id": key},
    }
    values.update(fields)
    return EmailEvent(**values)


def long_text() -> str:
    """10 kB that does not compress (btree compresses repetitive keys under the limit)."""
    return secrets.token_hex(5000)


def signed_json(body: bytes) -> tuple[bytes, dict[str, str]]:
    request = samples_for("sendgrid").signed_request(SPEC, KEY, body, now=datetime.now(UTC))
    return request.body, dict(request.headers)


def item(index: int, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "email": f"user{index}@example.com",
        "timestamp": 1700000000 + index,
        "event": "delivered",
        "sg_event_id": f"ev-{index}-{secrets.token_hex(4)}",
        "sg_message_id": f"msg{index}.filter",
    }
    values.update(fields)
    return values


async def rows(url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


@pytest.fixture
async def pool(fresh_db_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(fresh_db_url, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


def writer_on(pool: asyncpg.Pool, metrics: Metrics) -> IsolatingWriter:
    breaker = AsyncCircuitBreaker(
        "storage", metrics, fail_max=1, reset_timeout=60, exclude=(is_data_error,)
    )
    return IsolatingWriter(EventStore(pool), QuarantineStore(pool), breaker, metrics)


async def test_hostile_values_from_a_signed_batch_are_stored_and_traffic_keeps_flowing(
    gateway_factory: Any, fresh_db_url: str
) -> None:
    """NUL, an integer over 64 bits, a 10 kB recipient, message id, tag and dedup key in one
    signed SendGrid batch: 200, all stored (made storable), the next batch is stored too and
    the storage breaker never leaves closed. (msgspec refuses lone surrogate escapes in JSON
    bodies with a 400; surrogates are covered at the storage boundary below.)"""
    recipient = long_text() + "@example.com"
    hostile = [
        item(0, reason="nul\u0000here", category=["a\u0000b"], note={"k\u0000": "v\u0000"}),
        item(1, reason="plain"),
        item(2, email=recipient),
        item(3, sg_message_id=long_text()),
        item(4, category=[long_text()]),
        item(5, sg_event_id=long_text()),
    ]
    # JSON allows integers beyond 64 bits and msgspec decodes them, but cannot encode them
    big = b"123456789012345678901234567890"
    body = msgspec.json.encode(hostile).replace(b'"plain"', b'"plain","big":' + big)
    async with gateway_factory(sources=SOURCES) as gw:
        content, headers = signed_json(body)
        first = await gw.client.post("/webhooks/sendgrid/main", content=content, headers=headers)
        assert first.status_code == 200, first.text
        assert first.json() == {"accepted": 6, "duplicates": 0}
        content, headers = signed_json(samples_for("sendgrid").example_body(3, seed=7))
        after = await gw.client.post("/webhooks/sendgrid/main", content=content, headers=headers)
        assert after.json() == {"accepted": 3, "duplicates": 0}
        assert gw.runtime.storage_breaker.state == "closed"
        assert gw.metric("hookline_storage_flush_failures_total") == 0

    stored = await rows(
        fresh_db_url,
        "SELECT dedup_key, recipient, message_id, reason, tags, raw FROM events",
    )
    assert len(stored) == 9
    by_id = {msgspec.json.decode(r["raw"])["sg_event_id"]: r for r in stored}
    assert by_id[hostile[0]["sg_event_id"]]["reason"] == "nul\ufffdhere"
    assert by_id[hostile[0]["sg_event_id"]]["tags"] == ["a\ufffdb"]
    assert msgspec.json.decode(by_id[hostile[1]["sg_event_id"]]["raw"])["big"] == int(big)
    long_recipient = by_id[hostile[2]["sg_event_id"]]
    assert len(long_recipient["recipient"]) == INDEXED_MAX_CHARS
    assert msgspec.json.decode(long_recipient["raw"])["email"] == recipient  # kept in full
    assert len(by_id[hostile[3]["sg_event_id"]]["message_id"]) == INDEXED_MAX_CHARS
    assert len(by_id[hostile[4]["sg_event_id"]]["tags"][0]) == INDEXED_MAX_CHARS
    digest_key = by_id[hostile[5]["sg_event_id"]]["dedup_key"]
    assert digest_key.startswith("sendgrid:sha256:") and len(digest_key) == 16 + 64
    # short keys are kept as they were, so pre-upgrade events still deduplicate
    assert by_id[hostile[0]["sg_event_id"]]["dedup_key"] == f"sendgrid:{hostile[0]['sg_event_id']}"


async def test_lone_surrogates_and_nul_anywhere_are_stored(
    pool: asyncpg.Pool, fresh_db_url: str
) -> None:
    """Lone surrogates (UTF-8 cannot encode them, so neither the driver nor msgpack can) and
    NUL in text fields, tags, metadata keys and values and raw: made storable, stored, and
    nothing is quarantined."""
    metrics = Metrics()
    writer = writer_on(pool, metrics)
    hostile = event(
        "s",
        reason="\ud800 and \x00",
        diagnostic="\udfff",
        tags=("t\ud800",),
        metadata={"k\ud800": "v\x00", "n": [1, "\udc00"]},
        raw={"x": "\ud800", "\x00": 1},
    )
    keys = await writer.write(storable_events([hostile, event("clean")]))
    assert set(keys) == {"sendgrid:s", "sendgrid:clean"}
    (row,) = await rows(
        fresh_db_url,
        "SELECT reason, diagnostic, tags, metadata, raw FROM events WHERE dedup_key = $1",
        "sendgrid:s",
    )
    assert row["reason"] == "\ufffd and \ufffd" and row["diagnostic"] == "\ufffd"
    assert row["tags"] == ["t\ufffd"]
    assert msgspec.json.decode(row["metadata"]) == {"k\ufffd": "v\ufffd", "n": [1, "\ufffd"]}
    assert msgspec.json.decode(row["raw"]) == {"x": "\ufffd", "\ufffd": 1}
    assert await QuarantineStore(pool).list() == []


async def test_the_store_itself_replaces_nul_in_text_fields_and_tags(
    pool: asyncpg.Pool, fresh_db_url: str
) -> None:
    """The store does not rely on storable.py for NUL (PostgreSQL text cannot hold it):
    an event written straight to ``EventStore.write_events`` with NUL in a text field and
    a tag is stored with U+FFFD in their place, and its NUL-free fields are unchanged."""
    nul = event("nul", reason="a\x00b", diagnostic="clean", tags=("t\x00", "plain"))
    assert await EventStore(pool).write_events([nul]) == {"sendgrid:nul"}
    (row,) = await rows(
        fresh_db_url,
        "SELECT reason, diagnostic, recipient, tags FROM events WHERE dedup_key = $1",
        "sendgrid:nul",
    )
    assert row["reason"] == "a\ufffdb"
    assert row["diagnostic"] == "clean" and row["recipient"] == "nul@example.com"
    assert row["tags"] == ["t\ufffd", "plain"]


async def test_without_storable_values_a_surrogate_is_quarantined_not_stuck(
    pool: asyncpg.Pool,
) -> None:
    """The bisecting writer is the safety net: an event that was not made storable (say,
    spooled by an older version) is quarantined as invalid_text; the others are stored."""
    metrics = Metrics()
    writer = writer_on(pool, metrics)
    keys = await writer.write([event("a"), event("b", reason="\ud800"), event("c")])
    assert set(keys) == {"sendgrid:a", "sendgrid:c"}
    (kept,) = await QuarantineStore(pool).list()
    assert kept.reason == "invalid_text" and kept.dedup_key == "sendgrid:b"
    assert kept.event is not None and kept.event.reason == "\ufffd"  # kept storable
    assert writer.breaker.state == "closed"


async def test_redelivered_long_dedup_key_is_still_a_duplicate(
    gateway_factory: Any,
) -> None:
    """A 10 kB event id is digested the same way every time: a redelivery is a duplicate."""
    body = msgspec.json.encode([item(0, sg_event_id=long_text())])
    async with gateway_factory(sources=SOURCES) as gw:
        for expected in (0, 1):
            content, headers = signed_json(body)
            response = await gw.client.post(
                "/webhooks/sendgrid/main", content=content, headers=headers
            )
            assert response.json() == {"accepted": 1, "duplicates": expected}


async def test_distinct_long_values_stay_distinct_after_truncation(
    gateway_factory: Any, fresh_db_url: str
) -> None:
    """Two 10 kB message ids that share their first 5 kB are cut to different values."""
    prefix = long_text()
    first, second = prefix + "a" * 100, prefix + "b" * 100
    body = msgspec.json.encode([item(0, sg_message_id=first), item(1, sg_message_id=second)])
    async with gateway_factory(sources=SOURCES) as gw:
        content, headers = signed_json(body)
        response = await gw.client.post("/webhooks/sendgrid/main", content=content, headers=headers)
        assert response.status_code == 200
    stored = await rows(fresh_db_url, "SELECT DISTINCT message_id FROM events")
    assert len(stored) == 2


async def test_a_batch_mixing_poison_and_good_events_stores_the_good_ones(
    pool: asyncpg.Pool, fresh_db_url: str
) -> None:
    """Unsanitized poison (a 10 kB recipient PostgreSQL refuses for its index) in the middle
    of a batch: the good events are stored, the poison one is quarantined with its error and
    event, counted, and the breaker (fail_max=1) stays closed over repeated batches."""
    metrics = Metrics()
    writer = writer_on(pool, metrics)
    for round_ in range(3):
        good = [event(f"good-{round_}-{i}") for i in range(7)]
        poison = event(f"poison-{round_}", recipient=long_text())
        batch = [*good[:3], poison, *good[3:]]
        keys = await writer.write(batch)
        assert isinstance(keys, StoredKeys)
        assert set(keys) == {e.dedup_key for e in good}
        assert keys.quarantined == {poison.dedup_key}
        assert writer.breaker.state == "closed"
    stored = await rows(fresh_db_url, "SELECT dedup_key FROM events")
    assert len(stored) == 21 and not any("poison" in r["dedup_key"] for r in stored)
    kept = await QuarantineStore(pool).list()
    assert len(kept) == 3
    assert {k.stage for k in kept} == {"store"}
    assert {k.reason for k in kept} == {"value_too_large"}
    assert all(k.event is not None and k.event.dedup_key == k.dedup_key for k in kept)
    assert all("ProgramLimitExceededError" in k.error for k in kept)
    sample = metrics.registry.get_sample_value(
        "hookline_events_quarantined_total",
        {"provider": "sendgrid", "stage": "store", "reason": "value_too_large"},
    )
    assert sample == 3


async def test_an_outage_still_propagates_and_opens_the_breaker(pool: asyncpg.Pool) -> None:
    """Unavailability is not a data error: the write raises and the breaker opens."""
    metrics = Metrics()
    writer = writer_on(pool, metrics)
    await pool.close()
    with pytest.raises(CircuitOpenError):  # fail_max=1: the first failure trips it
        await writer.write([event("a")])
    assert writer.breaker.state == "open"


async def test_the_drainer_drains_past_a_poison_record_and_the_record_replays(
    pool: asyncpg.Pool, fresh_db_url: str, tmp_path: Path
) -> None:
    """A spooled segment holds a record PostgreSQL refuses between good ones: one drain
    stores every good event, quarantines the poison one, empties the spool, and the breaker
    stays closed; after the cause is removed, the quarantined event replays."""
    async with pool.acquire() as conn:
        await conn.execute(REFUSE_POISON)
    metrics = Metrics()
    writer = writer_on(pool, metrics)
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    good = [event(f"g{i}") for i in range(10)]
    poison = event("p", reason="poison")
    records = encode_record(good[:5]) + encode_record([poison]) + encode_record(good[5:])
    (spool_dir / "seg-000000000001.log").write_bytes(records)
    spool = Spool(spool_dir, metrics, max_bytes=10**6, segment_bytes=10**6)
    assert spool.oldest_age_seconds() > 0

    moved = await SpoolDrainer(spool, writer, writer.breaker, metrics).drain_once()

    assert moved == 11
    assert spool.events == 0 and spool.oldest_age_seconds() == 0
    assert writer.breaker.state == "closed"
    stored = {r["dedup_key"] for r in await rows(fresh_db_url, "SELECT dedup_key FROM events")}
    assert stored == {e.dedup_key for e in good}
    (kept,) = await QuarantineStore(pool).list()
    assert kept.reason == "invalid_value" and kept.event == poison

    from gateway.ingest.quarantine_replay import ReplayFailedError, replay_entry
    from gateway.sources import SourceTable
    from tests.integration.conftest import build_settings

    sources = SourceTable(build_settings(fresh_db_url, tmp_path))
    with pytest.raises(ReplayFailedError) as refused:
        await replay_entry(kept, QuarantineStore(pool), writer, sources)
    assert refused.value.status == 422
    still = await QuarantineStore(pool).get(kept.id)
    assert still is not None and still.replayed_at is None
    assert still.replay_error is not None and "refused by test trigger" in still.replay_error

    async with pool.acquire() as conn:
        await conn.execute("DROP TRIGGER refuse_poison ON events")
    replayed = await replay_entry(still, QuarantineStore(pool), writer, sources)
    assert (replayed.events, replayed.new) == (1, 1)
    stored = {r["dedup_key"] for r in await rows(fresh_db_url, "SELECT dedup_key FROM events")}
    assert poison.dedup_key in stored
    done = await QuarantineStore(pool).get(kept.id)
    assert done is not None and done.replayed_at is not None and done.replay_error is None


async def test_a_raw_payload_nested_as_deep_as_msgspec_decodes_is_not_stuck(
    pool: asyncpg.Pool, fresh_db_url: str
) -> None:
    """A raw payload nested as deep as msgspec decodes (and with a NUL at the bottom, so it
    takes the slow path): stored or quarantined, the batch's other event stored."""
    depth = 900
    raw = msgspec.json.decode(b"[" * depth + b'"\\u0000"' + b"]" * depth)
    metrics = Metrics()
    writer = writer_on(pool, metrics)
    deep = event("deep", raw=raw)
    keys = await writer.write(storable_events([deep, event("next")]))
    assert "sendgrid:next" in keys
    kept = await QuarantineStore(pool).list()
    assert "sendgrid:deep" in keys or [k.dedup_key for k in kept] == ["sendgrid:deep"]
    assert writer.breaker.state == "closed"


async def test_group_commit_reports_the_quarantined_event_to_its_own_request(
    pool: asyncpg.Pool,
) -> None:
    """Requests flushed together in one group commit: only the request that carried the
    poison event hears it was quarantined; every request's good events are new."""
    from gateway.ingest.batcher import Batcher

    metrics = Metrics()
    writer = writer_on(pool, metrics)
    batcher = Batcher(writer.write, metrics, max_flushes_in_flight=1)
    batcher.start()
    try:
        blocker = batcher.submit([event("first")])  # holds the only flush slot
        with_poison = batcher.submit([event("a1"), event("p", recipient=long_text()), event("a2")])
        clean = batcher.submit([event("b1"), event("b2"), event("b3")])
        _, poisoned, other = await asyncio.gather(blocker, with_poison, clean)
    finally:
        await batcher.close()
    assert (len(poisoned.new), poisoned.duplicates, poisoned.quarantined) == (2, 0, 1)
    assert (len(other.new), other.duplicates, other.quarantined) == (3, 0, 0)
