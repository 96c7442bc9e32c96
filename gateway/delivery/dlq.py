"""The dead-letter queue: list, inspect, replay (one or in bulk) and discard entries.

Replay moves an entry back into the outbox as a fresh delivery (attempts start again; the
``webhook-id`` is unchanged, so a consumer that did get an earlier attempt can dedupe) and
deletes it from the DLQ in the same statement: a replayed entry is delivered exactly once,
and replaying the same id twice finds nothing the second time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from gateway.clock import Clock
from gateway.delivery.signing import webhook_id

__all__ = ["DeadLetterQueue", "DlqEntry", "RangeSelection"]

_json = msgspec.json.Decoder()


class DlqEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One dead-lettered delivery, as the admin API shows it."""

    id: int
    sink: str
    dedup_key: str
    event_type: str
    webhook_id: str
    #: "exhausted" (max_attempts reached) or "permanent" (a non-retryable 4xx)
    reason: str
    attempts: int
    replays: int
    last_status: int | None
    last_error: str
    enqueued_at: datetime
    dead_at: datetime
    history: list[dict[str, Any]]
    #: the payload that was (and will be) sent; only when one entry is fetched
    event: Any = None


_MOVE = """
moved AS (
    DELETE FROM dlq AS d USING picked AS p WHERE d.id = p.id
    RETURNING d.sink, d.dedup_key, d.event_type, d.payload, d.trace_context, d.enqueued_at,
              d.replays
), inserted AS (
    INSERT INTO outbox (processor, sink, dedup_key, event_type, payload, trace_context,
                        created_at, due_at, replays)
    SELECT 'sink', sink, dedup_key, event_type, payload, trace_context, enqueued_at, $1,
           replays + 1
    FROM moved
    ON CONFLICT (processor, sink, dedup_key)
        DO UPDATE SET due_at = least(outbox.due_at, EXCLUDED.due_at)
    RETURNING 1
)
SELECT n, CASE WHEN n > 0 THEN pg_notify('hookline_outbox', '') END
FROM (SELECT count(*) AS n FROM inserted) AS c
"""

_REPLAY_ONE = "WITH picked AS (SELECT id FROM dlq WHERE id = $2 FOR UPDATE), " + _MOVE  # noqa: S608

_PICK_RANGE = """WITH picked AS (
    SELECT id FROM dlq
    WHERE sink = $2
      AND ($3::timestamptz IS NULL OR dead_at >= $3)
      AND ($4::timestamptz IS NULL OR dead_at < $4)
      AND id <= $5
    ORDER BY id
    LIMIT $6
    FOR UPDATE SKIP LOCKED
), """
_REPLAY_RANGE = _PICK_RANGE + _MOVE

_COUNT_RANGE = """
SELECT count(*), max(id) FROM dlq
WHERE sink = $1
  AND ($2::timestamptz IS NULL OR dead_at >= $2)
  AND ($3::timestamptz IS NULL OR dead_at < $3)
"""


@dataclass(frozen=True, slots=True)
class RangeSelection:
    """Entries of one sink dead-lettered in [since, until), up to ``max_id`` (fixed when the
    bulk replay starts, so entries dead-lettered during it are not picked up again)."""

    sink: str
    since: datetime | None
    until: datetime | None
    count: int
    max_id: int


class DeadLetterQueue:
    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self.pool = pool
        self.clock = clock

    async def list(
        self, *, sink: str | None = None, before_id: int | None = None, limit: int = 50
    ) -> list[DlqEntry]:
        """Newest first; ``before_id`` continues a previous page (keyset pagination)."""
        async with self.pool.acquire() as conn:
            records = await conn.fetch(
                """SELECT id, sink, dedup_key, event_type, reason, attempts, replays,
                          last_status, last_error, enqueued_at, dead_at, history
                    FROM dlq
                    WHERE ($1::text IS NULL OR sink = $1)
                      AND ($2::bigint IS NULL OR id < $2)
                    ORDER BY id DESC LIMIT $3""",
                sink,
                before_id,
                limit,
            )
        return [_entry(record) for record in records]

    async def get(self, entry_id: int) -> DlqEntry | None:
        async with self.pool.acquire() as conn:
            record = await conn.fetchrow(
                """SELECT id, sink, dedup_key, event_type, reason, attempts, replays,
                          last_status, last_error, enqueued_at, dead_at, history, payload
                   FROM dlq WHERE id = $1""",
                entry_id,
            )
        return _entry(record, with_event=True) if record is not None else None

    async def replay(self, entry_id: int) -> bool:
        """Move one entry back to the outbox; False when there is no such entry."""
        async with self.pool.acquire() as conn:
            moved = await conn.fetchval(_REPLAY_ONE, self.clock.now(), entry_id)
        return bool(moved)

    async def select_range(
        self, sink: str, since: datetime | None, until: datetime | None
    ) -> RangeSelection:
        async with self.pool.acquire() as conn:
            record = await conn.fetchrow(_COUNT_RANGE, sink, since, until)
        assert record is not None
        return RangeSelection(sink, since, until, record[0], record[1] or 0)

    async def replay_range(
        self,
        selection: RangeSelection,
        *,
        chunk: int = 500,
        progress: Callable[[int], Awaitable[None]] | None = None,
    ) -> int:
        """Move a selection back to the outbox, ``chunk`` entries per transaction;
        ``progress`` gets the running total after each full chunk."""
        total = 0
        while True:
            async with self.pool.acquire() as conn:
                moved = await conn.fetchval(
                    _REPLAY_RANGE,
                    self.clock.now(),
                    selection.sink,
                    selection.since,
                    selection.until,
                    selection.max_id,
                    chunk,
                )
            total += int(moved)
            if moved < chunk:
                return total
            if progress is not None:
                await progress(total)

    async def delete(self, entry_id: int) -> bool:
        async with self.pool.acquire() as conn:
            deleted = await conn.fetchval("DELETE FROM dlq WHERE id = $1 RETURNING id", entry_id)
        return deleted is not None


def _entry(record: Any, *, with_event: bool = False) -> DlqEntry:
    return DlqEntry(
        id=record["id"],
        sink=record["sink"],
        dedup_key=record["dedup_key"],
        event_type=record["event_type"],
        webhook_id=webhook_id(record["sink"], record["dedup_key"]),
        reason=record["reason"],
        attempts=record["attempts"],
        replays=record["replays"],
        last_status=record["last_status"],
        last_error=record["last_error"],
        enqueued_at=record["enqueued_at"],
        dead_at=record["dead_at"],
        history=[item for item in _json.decode(record["history"]) if item is not None],
        event=_json.decode(record["payload"]) if with_event else None,
    )
