"""The spool's record format: round trip, and damaged stretches found and isolated."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec

from gateway.ingest.spool import MAGIC, Spool, SpoolUnavailableError, encode_record, read_segment
from handlers.events import BounceClass, EmailEvent, EventType
from observability.metrics import Metrics

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(key: str) -> EmailEvent:
    return EmailEvent(
        provider="ses",
        source="prod",
        event_type=EventType.BOUNCED,
        bounce_class=BounceClass.HARD,
        occurred_at=NOW,
        received_at=NOW,
        recipient="a@example.com",
        message_id="m",
        dedup_key=key,
        tags=("t",),
        metadata={"k": [1, 2]},
        raw={"nested": {"x": None}},
    )


def test_records_round_trip_exactly() -> None:
    events = [event("a"), event("b")]
    result = read_segment(encode_record(events) + encode_record([event("c")]))
    assert result.events == [*events, event("c")]
    assert result.records == 2 and result.corrupt == []


def test_flipped_byte_isolates_only_that_record() -> None:
    good1, bad, good2 = (encode_record([event(k)]) for k in "xyz")
    damaged = bytearray(bad)
    damaged[-1] ^= 0x01
    result = read_segment(good1 + bytes(damaged) + good2)
    assert [e.dedup_key for e in result.events] == ["x", "z"]
    assert result.corrupt == [(len(good1), bytes(damaged))]


def test_garbage_before_a_record_is_skipped_to_the_next_marker() -> None:
    record = encode_record([event("ok")])
    result = read_segment(b"\x00garbage" + record)
    assert [e.dedup_key for e in result.events] == ["ok"]
    assert result.corrupt[0][1] == b"\x00garbage"
    assert MAGIC not in result.corrupt[0][1]


def test_spool_refuses_appends_beyond_its_limit(tmp_path: Path) -> None:
    """A spool with room for exactly three records takes three, then reports itself not
    writable and refuses the fourth; what it accepted is on disk and accounted for."""
    import asyncio

    record_size = len(encode_record([event("e0")]))  # every e<digit> record has this size
    spool = Spool(tmp_path, Metrics(), max_bytes=3 * record_size, segment_bytes=10_000)

    async def fill() -> tuple[list[bool], bool]:
        writable_before = []
        for i in range(3):
            writable_before.append(spool.writable())
            await spool.append([event(f"e{i}")])
        try:
            await spool.append([event("e3")])
        except SpoolUnavailableError:
            return writable_before, True
        return writable_before, False

    writable_before, refused = asyncio.run(fill())
    assert writable_before == [True, True, True]
    assert refused, "the fourth record went beyond max_bytes"
    assert not spool.writable()
    assert (spool.events, spool.total_bytes) == (3, 3 * record_size)
    on_disk = b"".join(path.read_bytes() for path in sorted(tmp_path.glob("seg-*.log")))
    assert [e.dedup_key for e in read_segment(on_disk).events] == ["e0", "e1", "e2"]


def test_quarantine_records_round_trip_beside_event_records() -> None:
    """The second record kind (records to quarantine) is read back in order of kind, and
    the oldest receipt time covers both kinds."""
    from gateway.ingest.spool import encode_quarantine_record
    from gateway.storage.quarantine import QuarantineItem

    earlier = datetime(2025, 12, 31, tzinfo=UTC)
    item = QuarantineItem(
        provider="sendgrid",
        source="main",
        received_at=earlier,
        stage="parse",
        reason="invalid_item",
        error="[1].timestamp: not a number",
        field="[1].timestamp",
        raw={"timestamp": "not-a-time", "big": 2**70},
    )
    data = encode_record([event("a")]) + encode_quarantine_record([item])
    result = read_segment(data)
    assert result.events == [event("a")]
    # msgpack cannot hold an integer beyond 64 bits: it is kept as its digits
    as_spooled = msgspec.structs.replace(item, raw={"timestamp": "not-a-time", "big": str(2**70)})
    assert result.quarantined == [as_spooled]
    assert result.records == 2 and result.corrupt == []
    assert result.oldest == earlier.timestamp()
