"""The outbox as a work queue shared by any number of workers (``FOR UPDATE SKIP LOCKED``).

A claim sets a lease (``claimed_until``) and a claim token on up to ``limit`` due rows.
Results are written back only where the token still matches, so a worker whose lease ran out
(it stalled or died, and another worker took the rows over) cannot overwrite the newer
claim's outcome: each (event, processor) is completed exactly once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from gateway.delivery.models import ClaimedRow, Outcome, RowResult

__all__ = ["FinishReport", "OutboxQueue"]

_CLAIM = """
UPDATE outbox SET claimed_until = $2, claim_token = $3
WHERE id = ANY(ARRAY(
    SELECT id FROM outbox
    WHERE due_at <= $1
      AND (claimed_until IS NULL OR claimed_until <= $1)
      AND ((processor = 'suppressions' AND $6) OR (processor = 'sink' AND sink = ANY($4)))
    ORDER BY due_at
    LIMIT $5
    FOR UPDATE SKIP LOCKED
))
RETURNING id, processor, sink, dedup_key, event_type, payload, trace_context, created_at,
          attempts
"""

_DELETE_DONE = """
DELETE FROM outbox WHERE id = ANY($1::bigint[]) AND claim_token = $2 RETURNING id
"""

_RESCHEDULE = """
UPDATE outbox AS o SET
    attempts = u.attempts,
    due_at = u.due_at,
    last_error = coalesce(u.error, o.last_error),
    history = CASE WHEN u.entry IS NULL THEN o.history
                   ELSE o.history || jsonb_build_array(u.entry::jsonb) END,
    claimed_until = NULL,
    claim_token = NULL
FROM unnest($1::bigint[], $2::int[], $3::timestamptz[], $4::text[], $5::text[])
    AS u(id, attempts, due_at, error, entry)
WHERE o.id = u.id AND o.claim_token = $6
"""

_DEAD_LETTER = """
WITH u AS (
    SELECT * FROM unnest($1::bigint[], $2::int[], $3::text[], $4::int[], $5::text[], $6::text[])
        AS u(id, attempts, reason, status, error, entry)
), moved AS (
    DELETE FROM outbox AS o USING u
    WHERE o.id = u.id AND o.claim_token = $7
    RETURNING o.sink, o.dedup_key, o.event_type, o.payload, o.trace_context, o.created_at,
              o.replays, o.history, u.attempts, u.reason, u.status, u.error, u.entry
)
INSERT INTO dlq (sink, dedup_key, event_type, payload, trace_context, enqueued_at, dead_at,
                 reason, attempts, replays, last_status, last_error, history)
SELECT sink, dedup_key, event_type, payload, trace_context, created_at, $8, reason, attempts,
       replays, status, error, history || jsonb_build_array(entry::jsonb)
FROM moved
ON CONFLICT (sink, dedup_key) DO UPDATE SET
    event_type = EXCLUDED.event_type, payload = EXCLUDED.payload,
    trace_context = EXCLUDED.trace_context, enqueued_at = EXCLUDED.enqueued_at,
    dead_at = EXCLUDED.dead_at, reason = EXCLUDED.reason, attempts = EXCLUDED.attempts,
    replays = EXCLUDED.replays, last_status = EXCLUDED.last_status,
    last_error = EXCLUDED.last_error, history = EXCLUDED.history
RETURNING sink
"""


@dataclass(frozen=True, slots=True)
class FinishReport:
    """What a ``finish`` call wrote (rows whose claim was lost are not counted)."""

    delivered: int
    rescheduled: int
    dead_lettered: list[str]
    lost: int


class OutboxQueue:
    """Claims due outbox rows and writes results back, always checking the claim token."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def claim(
        self,
        now: datetime,
        *,
        limit: int,
        lease_seconds: float,
        sinks: Sequence[str],
        suppressions: bool = True,
    ) -> list[ClaimedRow]:
        """Claim up to ``limit`` rows due at ``now`` for the suppressions processor and the
        given sinks (the others, e.g. sinks whose breaker is open, are left alone)."""
        token = uuid.uuid4()
        async with self.pool.acquire() as conn:
            records = await conn.fetch(
                _CLAIM,
                now,
                now + timedelta(seconds=lease_seconds),
                token,
                list(sinks),
                limit,
                suppressions,
            )
        rows = [ClaimedRow.from_record(record, token) for record in records]
        rows.sort(key=lambda row: row.id)
        return rows

    async def finish(self, results: Sequence[RowResult], now: datetime) -> FinishReport:
        """Write back the outcome of claimed sink rows in one transaction."""
        done: list[RowResult] = []
        later: list[RowResult] = []
        dead: list[RowResult] = []
        for result in results:
            if result.outcome is Outcome.SUCCESS:
                done.append(result)
            elif result.outcome in (Outcome.RETRY, Outcome.BREAKER_OPEN):
                later.append(result)
            else:
                dead.append(result)
        delivered = rescheduled = 0
        dead_sinks: list[str] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for token, group in _by_token(done).items():
                deleted = await conn.fetch(_DELETE_DONE, [r.row.id for r in group], token)
                delivered += len(deleted)
            for token, group in _by_token(later).items():
                status = await conn.execute(
                    _RESCHEDULE,
                    [r.row.id for r in group],
                    [r.attempts for r in group],
                    [r.due_at or now for r in group],
                    [r.attempt.error if r.attempt is not None else None for r in group],
                    [_entry(r) for r in group],
                    token,
                )
                rescheduled += int(status.rsplit(" ", 1)[-1])
            for token, group in _by_token(dead).items():
                moved = await conn.fetch(
                    _DEAD_LETTER,
                    [r.row.id for r in group],
                    [r.attempts for r in group],
                    [
                        "permanent" if r.outcome is Outcome.PERMANENT_FAILURE else "exhausted"
                        for r in group
                    ],
                    [r.attempt.status if r.attempt is not None else None for r in group],
                    [
                        (r.attempt.error if r.attempt is not None else None) or "failed"
                        for r in group
                    ],
                    [_entry(r) or "null" for r in group],
                    token,
                    now,
                )
                dead_sinks.extend(record["sink"] for record in moved)
        lost = len(results) - delivered - rescheduled - len(dead_sinks)
        return FinishReport(delivered, rescheduled, dead_sinks, lost)


def _by_token(results: Sequence[RowResult]) -> dict[uuid.UUID, list[RowResult]]:
    groups: dict[uuid.UUID, list[RowResult]] = {}
    for result in results:
        groups.setdefault(result.row.token, []).append(result)
    return groups


def _entry(result: RowResult) -> str | None:
    return json.dumps(result.attempt.as_json()) if result.attempt is not None else None
