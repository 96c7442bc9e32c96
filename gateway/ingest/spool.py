"""The local durable spool: append-only, checksummed segment files under the data directory.

Used when PostgreSQL cannot take events (storage breaker open, a write failed, the batcher
queue is full). ``append`` returns only after the record is fsync'd, so an ack never
precedes durability. Each record is ``MAGIC | length (u32) | crc32 (u32) | payload`` where the
payload is a msgpack list of ``EmailEvent``; a record with ``QUARANTINE_MAGIC`` instead holds a
msgpack list of ``QuarantineItem`` (records to quarantine while PostgreSQL is down; readers
that predate it set such records aside as damaged, never drop them). A torn write (crash
mid-append) or a corrupted record fails its checksum: readers skip to the next magic, and
the bad bytes are copied to ``spool/corrupt/`` and reported (log + metric), never silently
dropped.

Segments rotate at ``segment_bytes``; the drainer reads only closed segments and deletes a
segment only after all its events are committed to PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import structlog

from gateway.storage.quarantine import QuarantineItem
from gateway.storage.storable import clean_json, msgpack_safe
from handlers.events import EmailEvent
from observability.metrics import Metrics

__all__ = [
    "MAGIC",
    "QUARANTINE_MAGIC",
    "Segment",
    "Spool",
    "SpoolUnavailableError",
    "read_segment",
]

log = structlog.get_logger("hookline.spool")

MAGIC = b"HLS1"
QUARANTINE_MAGIC = b"HLQ1"
_HEADER = struct.Struct("<4sII")
_MAX_RECORD = 64 * 1024 * 1024
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[EmailEvent])
_quarantine_decoder = msgspec.msgpack.Decoder(list[QuarantineItem])


class SpoolUnavailableError(Exception):
    """The spool is disabled, full or cannot be written."""


@dataclass
class Segment:
    path: Path
    events: int
    size: int
    #: when its oldest record was received (epoch seconds); None while it holds none
    oldest: float | None = None


@dataclass(frozen=True)
class ReadResult:
    events: list[EmailEvent]
    records: int
    corrupt: list[tuple[int, bytes]]  # (offset, bytes set aside)
    quarantined: list[QuarantineItem] = field(default_factory=list)

    @property
    def oldest(self) -> float | None:
        """Receipt time (epoch seconds) of the oldest record read, if any."""
        times = [e.received_at for e in self.events] + [q.received_at for q in self.quarantined]
        return min(times).timestamp() if times else None


def encode_record(events: Sequence[EmailEvent]) -> bytes:
    try:
        payload = _encoder.encode(list(events))
    except OverflowError:  # an integer beyond 64 bits in a raw payload
        payload = _encoder.encode([msgpack_safe(event) for event in events])
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def encode_quarantine_record(items: Sequence[QuarantineItem]) -> bytes:
    try:
        payload = _encoder.encode(list(items))
    except OverflowError:  # an integer beyond 64 bits in a raw item
        payload = _encoder.encode(
            [
                msgspec.structs.replace(item, raw=clean_json(item.raw, big_ints_as_text=True))
                for item in items
            ]
        )
    return _HEADER.pack(QUARANTINE_MAGIC, len(payload), zlib.crc32(payload)) + payload


def _next_record(data: bytes, start: int) -> int:
    found = [i for i in (data.find(MAGIC, start), data.find(QUARANTINE_MAGIC, start)) if i != -1]
    return min(found) if found else len(data)


def read_segment(data: bytes) -> ReadResult:
    """Decode every intact record; collect the bytes of damaged stretches."""
    events: list[EmailEvent] = []
    quarantined: list[QuarantineItem] = []
    corrupt: list[tuple[int, bytes]] = []
    records = 0
    offset = 0
    while offset < len(data):
        good = False
        magic = data[offset : offset + 4]
        if magic in (MAGIC, QUARANTINE_MAGIC) and offset + _HEADER.size <= len(data):
            _, length, crc = _HEADER.unpack_from(data, offset)
            start = offset + _HEADER.size
            end = start + length
            if length <= _MAX_RECORD and end <= len(data):
                payload = data[start:end]
                if zlib.crc32(payload) == crc:
                    try:
                        if magic == MAGIC:
                            events.extend(_decoder.decode(payload))
                        else:
                            quarantined.extend(_quarantine_decoder.decode(payload))
                        records += 1
                        good = True
                        offset = end
                    except msgspec.DecodeError:
                        good = False
        if not good:
            stop = _next_record(data, offset + 1)
            corrupt.append((offset, data[offset:stop]))
            offset = stop
    return ReadResult(events, records, corrupt, quarantined)


class Spool:
    def __init__(
        self, directory: Path, metrics: Metrics, *, max_bytes: int, segment_bytes: int
    ) -> None:
        self.directory = directory
        self.corrupt_dir = directory / "corrupt"
        self.metrics = metrics
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._alock = asyncio.Lock()
        self._segments: list[Segment] = []
        self._fd: int | None = None
        self._failed = False
        self._progress_at = time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._load()

    # -- state ----------------------------------------------------------------------------
    def _load(self) -> None:
        """Account for segments left by a previous process (they are all closed now)."""
        for path in sorted(self.directory.glob("seg-*.log")):
            data = path.read_bytes()
            result = read_segment(data)
            count = len(result.events) + len(result.quarantined)
            self._segments.append(Segment(path, count, len(data), result.oldest))
        self._publish()
        self.metrics.spool_oldest_age.set_function(self.oldest_age_seconds)
        if self._segments:
            log.warning(
                "spool.found_on_start",
                segments=len(self._segments),
                events=self.events,
                bytes=self.total_bytes,
            )

    @property
    def events(self) -> int:
        return sum(segment.events for segment in self._segments)

    @property
    def total_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    def _publish(self) -> None:
        self.metrics.spool_events.set(self.events)
        self.metrics.spool_bytes.set(self.total_bytes)

    def writable(self) -> bool:
        return not self._failed and self.total_bytes < self.max_bytes

    def note_progress(self) -> None:
        """The drainer moved a segment, or saw the database unreachable: either way the
        spool is not stuck (readiness, see gateway/routes/health.py)."""
        self._progress_at = time.monotonic()

    def stalled_seconds(self) -> float:
        """How long the spool has held records without the drainer making progress."""
        return time.monotonic() - self._progress_at if self.events else 0.0

    def oldest_age_seconds(self) -> float:
        """How long the oldest record still in the spool has waited (0 when empty)."""
        times = [s.oldest for s in self._segments if s.events and s.oldest is not None]
        return max(0.0, time.time() - min(times)) if times else 0.0

    # -- writing --------------------------------------------------------------------------
    def _next_path(self) -> Path:
        last = 0
        for path in self.directory.glob("seg-*.log"):
            last = max(last, int(path.stem.split("-")[1]))
        return self.directory / f"seg-{last + 1:012d}.log"

    def _open_segment(self) -> None:
        path = self._next_path()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new file's directory entry is durable too
        finally:
            os.close(dir_fd)
        self._segments.append(Segment(path, 0, 0))

    def _append_sync(self, record: bytes, count: int) -> None:
        with self._lock:
            if self.total_bytes + len(record) > self.max_bytes:
                raise SpoolUnavailableError("spool full")
            if not self.events:
                self.note_progress()  # the stall clock starts with the first record
            if self._fd is None or self._segments[-1].size >= self.segment_bytes:
                self._close_active()
                self._open_segment()
            assert self._fd is not None
            try:
                written = os.write(self._fd, record)
                if written != len(record):
                    raise OSError("short write to spool")
                os.fsync(self._fd)
            except OSError:
                self._failed = True
                raise
            segment = self._segments[-1]
            segment.size += len(record)
            segment.events += count
            if segment.oldest is None:
                segment.oldest = time.time()
            self._publish()

    async def append(self, events: Sequence[EmailEvent]) -> None:
        """Append durably (fsync before returning) or raise ``SpoolUnavailableError``."""
        await self._append(encode_record(events), len(events))

    async def append_quarantine(self, items: Sequence[QuarantineItem]) -> None:
        """Append records to quarantine, durably, like ``append``."""
        await self._append(encode_quarantine_record(items), len(items))

    async def _append(self, record: bytes, count: int) -> None:
        async with self._alock:
            try:
                await asyncio.to_thread(self._append_sync, record, count)
            except OSError as exc:
                log.error("spool.write_failed", error=str(exc.strerror or exc))
                raise SpoolUnavailableError("spool write failed") from exc

    async def close(self) -> None:
        async with self._alock:
            with self._lock:
                self._close_active()

    def _close_active(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- draining -------------------------------------------------------------------------
    async def rotate(self) -> None:
        """Close the active segment so the drainer can take it."""
        async with self._alock:
            with self._lock:
                self._close_active()

    def closed_segments(self) -> Iterator[Segment]:
        with self._lock:
            active = self._segments[-1] if self._fd is not None and self._segments else None
            segments = [s for s in self._segments if s is not active]
        yield from segments

    def set_aside(self, segment: Segment, corrupt: list[tuple[int, bytes]]) -> list[Path]:
        """Keep damaged bytes in spool/corrupt/ for inspection."""
        self.corrupt_dir.mkdir(exist_ok=True)
        kept = []
        for offset, chunk in corrupt:
            target = self.corrupt_dir / f"{segment.path.stem}-at-{offset}.bin"
            target.write_bytes(chunk)
            kept.append(target)
        return kept

    def remove(self, segment: Segment) -> None:
        """Delete a fully drained segment."""
        with self._lock:
            segment.path.unlink(missing_ok=True)
            self._segments = [s for s in self._segments if s.path != segment.path]
            self._publish()
        self.note_progress()
        self._failed = False
