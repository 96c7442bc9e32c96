"""Replay protection for signature nonces (Mailgun's token) that holds through a database
outage.

Mailgun signs only timestamp + token, so the token is the only replay guard: the same token
with the same body is a redelivery, with another body a forgery (``NonceConflictError``,
401 ``replayed``). Three layers:

1. **Memory**: a bounded map of the nonces this replica saw within their replay window,
   whether PostgreSQL was up or down. A replay on the same replica is refused at once.
2. **PostgreSQL** (``webhook_nonces``), when it is reachable: the cross-replica check.
3. **Journal**, when it is not: each new nonce is appended to ``<data_dir>/nonces/journal``
   and fsync'd before the request is acknowledged, with a fingerprint of each event the
   request carried (its dedup key and a digest of the event). The journal is loaded into
   memory at start, so a restart does not forget it.

When PostgreSQL is back, the spool drainer calls ``merge_journal`` before it writes any
spooled event: each journal entry is recorded in ``webhook_nonces``; an entry that conflicts
with another digest already there (a replay accepted by another replica, or accepted before
a restart) marks its events as rejected, and ``admit`` keeps them out of storage (no event,
no suppression, no forwarding): they are logged (``nonce.replay_rejected``) and counted
(``hookline_replays_rejected_total``). Rejected fingerprints are persisted until the spool
segments that may hold those events have been drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import structlog

from gateway.resilience import AsyncCircuitBreaker
from gateway.settings import IngestSettings
from gateway.storage.errors import DB_ERRORS
from gateway.storage.store import EventStore, NonceConflictError
from handlers.events import EmailEvent
from observability.metrics import Metrics

__all__ = ["NonceJournalError", "NonceStore", "event_fingerprint"]

log = structlog.get_logger("hookline.nonces")

#: how long rejected fingerprints outlive the drain that followed their merge: covers a
#: request whose nonce was journaled just before a merge and whose events were spooled after
REJECTED_GRACE_SECONDS = 300.0

_Key = tuple[str, str, str]
#: (dedup key, digest of the event)
Fingerprint = tuple[str, str]


class NonceJournalError(Exception):
    """The nonce cannot be checked now: PostgreSQL is down and the journal is unwritable."""


class _Entry(msgspec.Struct, array_like=True):
    provider: str
    source: str
    nonce: str
    digest: str
    seen_at: float
    window: float
    events: list[tuple[str, str]]


class _Rejected(msgspec.Struct):
    #: fingerprints of events that must not be stored, and when the merge found them
    events: list[tuple[str, str, float]]


_encode = msgspec.json.Encoder().encode
_decode_entry = msgspec.json.Decoder(_Entry).decode
_decode_rejected = msgspec.json.Decoder(_Rejected).decode
_msgpack = msgspec.msgpack.Encoder()


def event_fingerprint(event: EmailEvent) -> Fingerprint:
    """An event's dedup key with a digest of all of it: identifies the very event a
    request carried, even when a forgery reuses another event's id."""
    return event.dedup_key, hashlib.sha256(_msgpack.encode(event)).hexdigest()


class NonceStore:
    def __init__(
        self,
        directory: Path,
        store: EventStore,
        breaker: AsyncCircuitBreaker,
        metrics: Metrics,
        *,
        memory_max: int = IngestSettings().nonce_memory_max,
        clock: Callable[[], float] = time.time,
        connected: asyncio.Event | None = None,
    ) -> None:
        self.directory = directory
        self.journal_path = directory / "journal"
        self.merging_path = directory / "journal.merging"
        self.rejected_path = directory / "rejected"
        self._store = store
        self._breaker = breaker
        #: set once PostgreSQL has been reached (a start with it down: journal until then)
        self._connected = connected
        self._metrics = metrics
        self.memory_max = memory_max
        self._clock = clock
        #: (provider, source, nonce) -> (digest, forget after)
        self._memory: OrderedDict[_Key, tuple[str, float]] = OrderedDict()
        self._rejected: dict[Fingerprint, float] = {}
        self._lock = threading.Lock()
        self._merge_lock = asyncio.Lock()
        self._journal_lock = asyncio.Lock()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._load()

    # -- start-up -------------------------------------------------------------------------
    def _load(self) -> None:
        for path in (self.merging_path, self.journal_path):
            for entry in _read_journal(path):
                self._remember(
                    (entry.provider, entry.source, entry.nonce),
                    entry.digest,
                    entry.seen_at + entry.window,
                )
        if self.rejected_path.exists():
            try:
                saved = _decode_rejected(self.rejected_path.read_bytes())
            except msgspec.DecodeError:
                log.error("nonce.rejected_file_unreadable", path=str(self.rejected_path))
            else:
                self._rejected = {(key, digest): until for key, digest, until in saved.events}

    # -- the request path -----------------------------------------------------------------
    async def check(
        self,
        provider: str,
        source: str,
        nonce: str,
        digest: str,
        *,
        window_seconds: float,
        events: Sequence[EmailEvent],
    ) -> None:
        """Record a nonce; ``NonceConflictError`` when it was seen with other content.

        Memory first, then PostgreSQL; while PostgreSQL is unreachable, the journal (fsync'd
        before this returns, so before the ack) or ``NonceJournalError`` if that fails."""
        key = (provider, source, nonce)
        now = self._clock()
        if self._seen(key, digest, now):
            return
        if self._database_allowed():
            try:
                await self._store.remember_nonce(provider, source, nonce, digest)
            except DB_ERRORS as exc:
                # the storage breaker is about PostgreSQL being reachable: count it there, so
                # the next requests go straight to the journal instead of waiting on timeouts
                self._breaker.record_failure(exc)
                log.warning("nonce.database_unreachable", error=type(exc).__name__)
            else:
                self._remember(key, digest, now + window_seconds)
                return
        entry = _Entry(
            provider,
            source,
            nonce,
            digest,
            now,
            window_seconds,
            [event_fingerprint(event) for event in events],
        )
        # one journal write at a time, memory checked again under the lock: of two
        # concurrent requests with one nonce, the second sees what the first recorded
        async with self._journal_lock:
            if self._seen(key, digest, now):
                return
            try:
                await asyncio.to_thread(self._append, _encode(entry) + b"\n")
            except OSError as exc:
                log.error("nonce.journal_failed", error=str(exc.strerror or exc))
                raise NonceJournalError("nonce journal unwritable") from exc
            self._remember(key, digest, now + window_seconds)

    def _database_allowed(self) -> bool:
        """PostgreSQL has been reached since start and the storage breaker lets calls in."""
        connected = self._connected is None or self._connected.is_set()
        return connected and self._breaker.allows_call()

    def _seen(self, key: _Key, digest: str, now: float) -> bool:
        """True: a redelivery of content this replica saw; ``NonceConflictError``: the
        nonce with other content; False: not in memory."""
        known = self._memory.get(key)
        if known is None or known[1] < now:
            return False
        if known[0] != digest:
            raise NonceConflictError(key[2])
        return True

    def _remember(self, key: _Key, digest: str, until: float) -> None:
        now = self._clock()
        if until < now:
            return
        self._memory[key] = (digest, until)
        self._memory.move_to_end(key)
        while self._memory:
            oldest_key, (_, oldest_until) = next(iter(self._memory.items()))
            if oldest_until >= now and len(self._memory) <= self.memory_max:
                break
            del self._memory[oldest_key]

    def _append(self, line: bytes) -> None:
        with self._lock:
            fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    # -- the drainer's hooks --------------------------------------------------------------
    def pending(self) -> bool:
        """Whether there are journal entries to merge."""
        return self.journal_path.exists() or self.merging_path.exists()

    async def merge_journal(self) -> None:
        """Record every journaled nonce in PostgreSQL; remember the events of those that
        conflict as rejected. Database errors propagate (the journal is kept for later)."""
        async with self._merge_lock:
            if not self.pending():
                return
            await asyncio.to_thread(self._take_journal)
            entries = _read_journal(self.merging_path)
            now = self._clock()
            rejected: dict[Fingerprint, float] = {}
            conflicts = 0
            for entry in entries:
                # a conflict is an answer, not a database failure: the breaker must not count it
                if not await self._breaker.call(self._record, entry):
                    conflicts += 1
                    for fingerprint in entry.events:
                        rejected[(fingerprint[0], fingerprint[1])] = now
            if rejected:
                self._rejected.update(rejected)
                await asyncio.to_thread(self._save_rejected)
                log.warning("nonce.replays_found", entries=len(entries), replays=conflicts)
            self.merging_path.unlink(missing_ok=True)
            log.info("nonce.journal_merged", entries=len(entries), replays=conflicts)

    async def run(self, stop: asyncio.Event, *, interval: float = 1.0) -> None:
        """Merge the journal whenever PostgreSQL allows: the background task of a gateway
        without a spool (with one, the spool drainer merges, so that it happens first)."""
        while not stop.is_set():
            if self.pending() and self._database_allowed():
                try:
                    await self.merge_journal()
                except Exception as exc:  # DB trouble: the breaker counted it; try later
                    log.warning("nonce.merge_paused", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def _record(self, entry: _Entry) -> bool:
        """Record a journaled nonce; False when it conflicts with another digest."""
        try:
            await self._store.remember_nonce(
                entry.provider, entry.source, entry.nonce, entry.digest
            )
        except NonceConflictError:
            return False
        return True

    def _take_journal(self) -> None:
        """Move the journal aside for merging (appending to a merge left unfinished)."""
        with self._lock:
            if not self.journal_path.exists():
                return
            if not self.merging_path.exists():
                os.replace(self.journal_path, self.merging_path)
                return
            data = self.journal_path.read_bytes()
            with self.merging_path.open("ab") as merging:
                merging.write(data)
                merging.flush()
                os.fsync(merging.fileno())
            self.journal_path.unlink()

    def _save_rejected(self) -> None:
        saved = _Rejected([(key, digest, until) for (key, digest), until in self._rejected.items()])
        tmp = self.rejected_path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            out.write(_encode(saved))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.rejected_path)

    def admit(self, events: list[EmailEvent]) -> list[EmailEvent]:
        """``events`` without those of replays found by ``merge_journal`` (logged, counted)."""
        if not self._rejected:
            return events
        keys = {key for key, _ in self._rejected}
        kept: list[EmailEvent] = []
        for event in events:
            if event.dedup_key in keys and event_fingerprint(event) in self._rejected:
                self._metrics.replays_rejected.labels(event.provider).inc()
                log.warning(
                    "nonce.replay_rejected",
                    provider=event.provider,
                    source=event.source,
                    event_type=str(event.event_type),
                )
            else:
                kept.append(event)
        return kept

    def drained(self) -> None:
        """The spool segments that existed at the last merge are drained: forget rejected
        fingerprints merged more than ``REJECTED_GRACE_SECONDS`` ago."""
        if not self._rejected:
            return
        horizon = self._clock() - REJECTED_GRACE_SECONDS
        stale = [fingerprint for fingerprint, at in self._rejected.items() if at < horizon]
        if not stale:
            return
        for fingerprint in stale:
            del self._rejected[fingerprint]
        if self._rejected:
            self._save_rejected()
        else:
            self.rejected_path.unlink(missing_ok=True)


def _read_journal(path: Path) -> list[_Entry]:
    """Every complete entry; a torn last line (a crash mid-append, never acknowledged) and
    damaged lines are skipped and logged."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    entries: list[_Entry] = []
    damaged = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            entries.append(_decode_entry(line))
        except msgspec.DecodeError:
            damaged += 1
    if damaged:
        log.error("nonce.journal_damaged", path=str(path), lines=damaged)
    return entries
