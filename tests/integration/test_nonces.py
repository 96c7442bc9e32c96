"""The nonce store against a real PostgreSQL: memory, journal (kept across restarts),
merge with conflicts found, and the events of replays kept out of storage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from gateway.ingest.drainer import SpoolDrainer
from gateway.ingest.spool import Spool, encode_record, read_segment
from gateway.nonces import REJECTED_GRACE_SECONDS, NonceJournalError, NonceStore, event_fingerprint
from gateway.resilience import AsyncCircuitBreaker
from gateway.storage.store import EventStore, NonceConflictError
from handlers import mailgun
from handlers.events import EmailEvent
from hookline_testing import samples_for
from observability.metrics import Metrics

SPEC, KEY = samples_for("mailgun").make_source("main")
WINDOW = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def events_of(body: bytes) -> tuple[str, str, list[EmailEvent]]:
    """(token, digest, events) of a Mailgun request body, as the webhook route sees them."""
    request = samples_for("mailgun").signed_request(SPEC, KEY, body, now=datetime.now(UTC))
    result = mailgun.ADAPTER.parse(request, SPEC, datetime.now(UTC))
    assert result.nonce is not None and result.nonce_digest is not None
    return result.nonce, result.nonce_digest, result.events


def forged_from(token_body: bytes, recipient: str, same_id: bool) -> bytes:
    data = msgspec.json.decode(token_body)
    data["event-data"]["recipient"] = recipient
    if not same_id:
        data["event-data"]["id"] = "evt-forged"
    return msgspec.json.encode(data)


def nonce_store(tmp_path: Path, store: EventStore, metrics: Metrics, clock: Clock) -> NonceStore:
    breaker = AsyncCircuitBreaker("storage", metrics, fail_max=3, reset_timeout=3600)
    return NonceStore(tmp_path / "nonces", store, breaker, metrics, clock=clock)


async def test_database_down_nonces_are_journaled_and_remembered_across_a_restart(
    tmp_path: Path, store: EventStore
) -> None:
    """With the storage breaker open, a new nonce is journaled; a new NonceStore on the same
    directory (a restarted gateway) still refuses the nonce with another digest and accepts
    a redelivery of the same content."""
    metrics, clock = Metrics(), Clock()
    first = nonce_store(tmp_path, store, metrics, clock)
    first._breaker.open()
    await first.check("mailgun", "main", "tok", "d1", window_seconds=WINDOW, events=[])
    assert first.journal_path.exists()
    with pytest.raises(NonceConflictError):
        await first.check("mailgun", "main", "tok", "d2", window_seconds=WINDOW, events=[])

    restarted = nonce_store(tmp_path, store, metrics, clock)
    restarted._breaker.open()
    with pytest.raises(NonceConflictError):
        await restarted.check("mailgun", "main", "tok", "d2", window_seconds=WINDOW, events=[])
    await restarted.check("mailgun", "main", "tok", "d1", window_seconds=WINDOW, events=[])
    clock.now += WINDOW + 1  # outside the window the journal entry no longer counts in memory
    again = nonce_store(tmp_path, store, metrics, clock)
    again._breaker.open()
    await again.check("mailgun", "main", "tok", "d3", window_seconds=WINDOW, events=[])


async def test_merge_diverts_only_the_replayed_request_even_with_the_same_event_id(
    tmp_path: Path, store: EventStore
) -> None:
    """A journaled nonce whose digest conflicts with the one PostgreSQL already holds marks
    that request's events as rejected; the genuine event with the same dedup key is kept;
    the rejection survives a restart and is forgotten after the grace period."""
    metrics, clock = Metrics(), Clock()
    token, digest, genuine = events_of(
        samples_for("mailgun").example_body(seed=3, event="complained")
    )
    complaint = samples_for("mailgun").example_body(seed=3, event="complained")
    request = samples_for("mailgun").signed_request(SPEC, KEY, complaint, now=datetime.now(UTC))
    forged_body = forged_from(request.body, "victim@example.com", same_id=True)
    forged = mailgun.ADAPTER.parse(
        samples_for("mailgun").signed_request(SPEC, KEY, forged_body, now=datetime.now(UTC)),
        SPEC,
        datetime.now(UTC),
    ).events
    assert forged[0].dedup_key == genuine[0].dedup_key
    await store.remember_nonce("mailgun", "main", token, digest)  # another replica's merge

    nonces = nonce_store(tmp_path, store, metrics, clock)
    nonces._breaker.open()
    await nonces.check("mailgun", "main", token, "other", window_seconds=WINDOW, events=forged)
    nonces._breaker.close()
    await nonces.merge_journal()
    assert not nonces.pending()
    assert nonces.admit([*genuine, *forged]) == genuine
    assert (
        metrics.registry.get_sample_value(
            "hookline_replays_rejected_total", {"provider": "mailgun"}
        )
        == 1
    )

    restarted = nonce_store(tmp_path, store, metrics, clock)
    assert restarted.admit(list(forged)) == []
    restarted.drained()
    assert restarted.admit(list(forged)) == []  # still within the grace period
    clock.now += REJECTED_GRACE_SECONDS + 1
    restarted.drained()
    assert restarted.admit(list(forged)) == forged
    assert not restarted.rejected_path.exists()


async def test_merge_of_a_first_sighting_records_it_for_every_replica(
    tmp_path: Path, store: EventStore
) -> None:
    """A journaled nonce nobody else saw is recorded in webhook_nonces by the merge, so a
    replay reaching any replica afterwards is refused by PostgreSQL."""
    metrics, clock = Metrics(), Clock()
    nonces = nonce_store(tmp_path, store, metrics, clock)
    nonces._breaker.open()
    await nonces.check("mailgun", "main", "fresh", "d1", window_seconds=WINDOW, events=[])
    nonces._breaker.close()
    await nonces.merge_journal()
    with pytest.raises(NonceConflictError):
        await store.remember_nonce("mailgun", "main", "fresh", "d2")
    other_replica = nonce_store(tmp_path / "other", store, metrics, clock)
    with pytest.raises(NonceConflictError):
        await other_replica.check(
            "mailgun", "main", "fresh", "d2", window_seconds=WINDOW, events=[]
        )


async def test_an_unwritable_journal_refuses_rather_than_skipping_the_check(
    tmp_path: Path, store: EventStore
) -> None:
    """Database down and the journal cannot be written: NonceJournalError (the route answers
    503), never an unchecked accept."""
    nonces = nonce_store(tmp_path, store, Metrics(), Clock())
    nonces._breaker.open()
    nonces.journal_path.mkdir()
    with pytest.raises(NonceJournalError):
        await nonces.check("mailgun", "main", "tok", "d1", window_seconds=WINDOW, events=[])


def test_an_event_fingerprint_survives_the_spool() -> None:
    """The journal identifies events by fingerprint; a spooled copy must fingerprint the
    same, or a replay would slip through the merge."""
    _, _, events = events_of(samples_for("mailgun").example_body(seed=5, event="failed"))
    spooled = read_segment(encode_record(events)).events
    assert [event_fingerprint(e) for e in spooled] == [event_fingerprint(e) for e in events]


async def test_without_a_spool_the_journal_is_merged_in_the_background(
    tmp_path: Path, store: EventStore
) -> None:
    """A gateway without a spool has no drainer: ``run`` merges the journal once PostgreSQL
    is reachable again, so the nonce becomes visible to every replica."""
    nonces = nonce_store(tmp_path, store, Metrics(), Clock())
    nonces._breaker.open()
    await nonces.check("mailgun", "main", "bg", "d1", window_seconds=WINDOW, events=[])
    nonces._breaker.close()
    stop = asyncio.Event()
    task = asyncio.create_task(nonces.run(stop, interval=0.05))
    try:
        for _ in range(200):
            if not nonces.pending():
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await task
    assert not nonces.pending()
    with pytest.raises(NonceConflictError):
        await store.remember_nonce("mailgun", "main", "bg", "d2")


async def test_concurrent_requests_with_one_nonce_during_an_outage_cannot_both_pass(
    tmp_path: Path, store: EventStore
) -> None:
    """Two requests with the same nonce and different content arriving together while the
    database is down: exactly one is accepted (and journaled), the other is a replay."""
    nonces = nonce_store(tmp_path, store, Metrics(), Clock())
    nonces._breaker.open()
    outcomes = await asyncio.gather(
        *(
            nonces.check("mailgun", "main", "race", f"d{i}", window_seconds=WINDOW, events=[])
            for i in range(8)
        ),
        return_exceptions=True,
    )
    assert sum(outcome is None for outcome in outcomes) == 1
    assert all(isinstance(o, NonceConflictError) for o in outcomes if o is not None)
    assert len(nonces.journal_path.read_bytes().splitlines()) == 1


async def test_the_drainer_merges_the_journal_even_when_nothing_was_spooled(
    tmp_path: Path, store: EventStore
) -> None:
    """A request whose nonce was journaled but whose events were refused (503, nothing
    spooled) still has its nonce recorded in PostgreSQL once the database is back."""
    metrics = Metrics()
    nonces = nonce_store(tmp_path, store, metrics, Clock())
    nonces._breaker.open()
    await nonces.check("mailgun", "main", "unspooled", "d1", window_seconds=WINDOW, events=[])
    nonces._breaker.close()
    spool = Spool(tmp_path / "spool", metrics, max_bytes=1 << 20, segment_bytes=1 << 16)
    drainer = SpoolDrainer(spool, store, nonces._breaker, metrics, replays=nonces)
    assert await drainer.drain_once() == 0
    assert not nonces.pending()
    with pytest.raises(NonceConflictError):
        await store.remember_nonce("mailgun", "main", "unspooled", "d2")
