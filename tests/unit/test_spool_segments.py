"""The spool's segment files on a real filesystem: rotation at ``segment_bytes`` (the
drainer sees only closed segments), and the failure latch (a failed write makes the spool
unwritable until the drainer removes a segment)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.ingest.spool import Spool, SpoolUnavailableError, encode_record, read_segment
from handlers.events import EmailEvent, EventType
from observability.metrics import Metrics

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def event(key: str) -> EmailEvent:
    return EmailEvent(
        provider="sendgrid",
        source="main",
        event_type=EventType.DELIVERED,
        occurred_at=NOW,
        received_at=NOW,
        recipient="a@example.com",
        message_id="m",
        dedup_key=key,
    )


def keys_in(path: Path) -> list[str]:
    return [e.dedup_key for e in read_segment(path.read_bytes()).events]


async def test_segments_rotate_at_segment_bytes_and_only_closed_ones_are_offered(
    tmp_path: Path,
) -> None:
    """With room for two records per segment, five appends make three segment files in
    order (2, 2, 1 records); the last one is still open, so the drainer is offered the
    first two only, and after ``rotate()`` all three."""
    record_size = len(encode_record([event("r0")]))
    spool = Spool(tmp_path, Metrics(), max_bytes=10**6, segment_bytes=2 * record_size)
    for i in range(5):
        await spool.append([event(f"r{i}")])

    files = sorted(tmp_path.glob("seg-*.log"))
    assert [keys_in(path) for path in files] == [["r0", "r1"], ["r2", "r3"], ["r4"]]
    assert [path.stat().st_size for path in files] == [
        2 * record_size,
        2 * record_size,
        record_size,
    ]
    assert (spool.events, spool.total_bytes) == (5, 5 * record_size)
    assert [s.path for s in spool.closed_segments()] == files[:2]

    await spool.rotate()
    assert [s.path for s in spool.closed_segments()] == files
    await spool.append([event("r5")])  # after a rotation the next record opens a new file
    assert keys_in(sorted(tmp_path.glob("seg-*.log"))[-1]) == ["r5"]
    await spool.close()


async def test_a_failed_write_latches_the_spool_unwritable_until_a_segment_is_drained(
    tmp_path: Path,
) -> None:
    """When a write to the active segment fails (here: the disk is full), the append raises
    SpoolUnavailableError and the spool stays unwritable, although it is far below its
    limit, so the gateway answers 503 instead of trusting it; once the drainer removes a
    segment the spool is writable again."""
    spool = Spool(tmp_path, Metrics(), max_bytes=10**6, segment_bytes=10**6)
    await spool.append([event("before")])
    assert spool.writable()

    # the active segment's file descriptor now writes to /dev/full (ENOSPC on every write)
    active_fd = spool._fd
    assert active_fd is not None
    full = os.open("/dev/full", os.O_WRONLY)
    saved = os.dup(active_fd)
    try:
        os.dup2(full, active_fd)
        with pytest.raises(SpoolUnavailableError):
            await spool.append([event("lost")])
    finally:
        os.dup2(saved, active_fd)
        os.close(saved)
        os.close(full)

    assert not spool.writable()
    assert spool.total_bytes < spool.max_bytes and spool.events == 1
    await spool.rotate()  # the next append would open a fresh segment: still latched
    assert not spool.writable(), "the latch must hold until a segment is drained"

    (segment,) = spool.closed_segments()
    assert keys_in(segment.path) == ["before"]
    spool.remove(segment)
    assert spool.writable()
    await spool.append([event("after")])
    assert spool.events == 1


async def test_quarantine_records_are_spooled_durably_and_counted(tmp_path: Path) -> None:
    """``append_quarantine`` writes parse-stage rejects as quarantine records: they count
    as held records, and a spool opened again on the same directory (a restart) reads
    them back whole, beside the events."""
    from gateway.storage.quarantine import QuarantineItem

    spool = Spool(tmp_path, Metrics(), max_bytes=10**6, segment_bytes=10**6)
    items = [
        QuarantineItem(
            provider="sendgrid",
            source="main",
            received_at=NOW,
            stage="parse",
            reason="invalid_item",
            error="missing field",
            raw={"n": n},
        )
        for n in range(2)
    ]
    await spool.append([event("e1")])
    await spool.append_quarantine(items)
    assert spool.events == 3
    await spool.close()
    reopened = Spool(tmp_path, Metrics(), max_bytes=10**6, segment_bytes=10**6)
    assert reopened.events == 3
    [segment] = list(reopened.closed_segments())
    result = read_segment(segment.path.read_bytes())
    assert result.quarantined == items
    assert [e.dedup_key for e in result.events] == ["e1"]


async def test_the_stall_clock_runs_only_while_records_wait(tmp_path: Path) -> None:
    """An empty spool is never stalled (exactly 0); once it holds records the stall clock
    runs, and drainer progress restarts it."""
    spool = Spool(tmp_path, Metrics(), max_bytes=10**6, segment_bytes=10**6)
    assert spool.stalled_seconds() == 0.0
    await spool.append([event("e1")])
    before = spool.stalled_seconds()
    assert before > 0.0
    spool.note_progress()
    assert spool.stalled_seconds() <= before
