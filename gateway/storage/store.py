"""Durable, idempotent event storage in PostgreSQL.

``write_events`` stores a batch in one transaction: it claims dedup keys in ``event_keys``
(``ON CONFLICT DO NOTHING ... RETURNING``), bulk-copies only the new events into the
partitioned ``events`` table, then runs the registered write hooks (outbox, rollups) on the
new events in the same transaction. So an event is either fully stored and acted on, or not
at all, and a redelivered event never triggers anything twice.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from gateway.settings import StorageSettings
from gateway.storage.errors import DB_ERRORS
from handlers.events import EmailEvent

__all__ = [
    "EVENT_COLUMNS",
    "PARTITION_LOCK_ID",
    "EventStore",
    "NonceConflictError",
    "WriteHook",
    "event_record",
]

#: runs inside the write transaction with the events that were new in it
WriteHook = Callable[[asyncpg.Connection, Sequence[EmailEvent]], Awaitable[None]]

EVENT_COLUMNS = (
    "dedup_key",
    "provider",
    "source",
    "event_type",
    "esp_event",
    "occurred_at",
    "received_at",
    "recipient",
    "message_id",
    "provider_event_id",
    "bounce_class",
    "reason",
    "smtp_status",
    "diagnostic",
    "url",
    "user_agent",
    "ip",
    "machine_open",
    "campaign",
    "tags",
    "metadata",
    "raw",
    "time_source",
)

_encode = msgspec.json.Encoder().encode

#: serialises partition DDL across every process on the database (replicas starting, the
#: retention worker): ``hookline_ensure_event_partition`` checks then creates, which races
#: the defaults of the storage tunables (gateway/settings.py holds them)
_STORAGE = StorageSettings()
PARTITION_LOCK_ID = 0x486F6F6C  # "Hool"


class NonceConflictError(Exception):
    """A nonce was seen before with different content: a replayed signature."""


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; ESP payloads occasionally do."""
    return value.replace("\x00", "\ufffd") if value is not None and "\x00" in value else value


def _json(value: Any) -> bytes:
    """JSON for a jsonb column (the pool's codec takes bytes); jsonb rejects the NUL escape."""
    data = _encode(value)
    return data.replace(b"\\u0000", b"\\ufffd") if b"\\u0000" in data else data


def event_record(event: EmailEvent) -> tuple[Any, ...]:
    """One ``events`` row, in ``EVENT_COLUMNS`` order (NUL characters replaced)."""
    row = (
        event.dedup_key,
        event.provider,
        event.source,
        event.event_type,  # a StrEnum is its value, and asyncpg encodes it as text
        event.esp_event,
        event.occurred_at,
        event.received_at,
        event.recipient,
        event.message_id,
        event.provider_event_id,
        event.bounce_class,
        event.reason,
        event.smtp_status,
        event.diagnostic,
        event.url,
        event.user_agent,
        event.ip,
        event.machine_open,
        event.campaign,
        list(event.tags),
        _json(event.metadata),
        _json(event.raw) if event.raw is not None else None,
        event.time_source,  # a StrEnum, encoded as text like event_type
    )
    # one C-level scan of every text field for the rare NUL (None formats as "None")
    text = (
        f"{event.dedup_key}{event.provider}{event.source}{event.esp_event}{event.recipient}"
        f"{event.message_id}{event.provider_event_id}{event.reason}{event.smtp_status}"
        f"{event.diagnostic}{event.url}{event.user_agent}{event.ip}{event.campaign}"
    )
    if "\x00" in text or any("\x00" in tag for tag in event.tags):
        return tuple(
            [_text(t) for t in v] if isinstance(v, list) else _text(v) if isinstance(v, str) else v
            for v in row
        )
    return row


class EventStore:
    """Writes and reads events; owns no connection of its own, only the pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.hooks: list[WriteHook] = []
        self._partitions: set[date] = set()

    def add_hook(self, hook: WriteHook) -> None:
        self.hooks.append(hook)

    async def ensure_partitions(
        self, today: date | None = None, days_ahead: int = _STORAGE.partitions_ahead_days
    ) -> None:
        """Create the daily partitions from yesterday to ``days_ahead`` days from now."""
        today = today or datetime.now(UTC).date()
        async with self.pool.acquire() as conn:
            for offset in range(-1, days_ahead + 1):
                day = today + timedelta(days=offset)
                if day not in self._partitions:
                    # never queue ingest behind a long read for the partition lock
                    async with conn.transaction():
                        await conn.execute("SET LOCAL lock_timeout = '2s'")
                        await conn.execute("SELECT pg_advisory_xact_lock($1)", PARTITION_LOCK_ID)
                        await conn.execute("SELECT hookline_ensure_event_partition($1)", day)
                    self._partitions.add(day)

    async def write_events(self, events: Sequence[EmailEvent]) -> set[str]:
        """Store ``events`` idempotently in one transaction; return the dedup keys that were new.

        Events sharing a dedup key within the batch are stored once.
        """
        if not events:
            return set()
        unique: dict[str, EmailEvent] = {}
        for event in events:
            unique.setdefault(event.dedup_key, event)
        days = {event.received_at.astimezone(UTC).date() for event in unique.values()}
        if not days <= self._partitions:
            for day in days - self._partitions:
                await self.ensure_partitions(day, days_ahead=0)
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """INSERT INTO event_keys (dedup_key, received_at)
                   SELECT * FROM unnest($1::text[], $2::timestamptz[])
                   ON CONFLICT DO NOTHING
                   RETURNING dedup_key""",
                list(unique),
                [event.received_at for event in unique.values()],
            )
            new_keys = {row["dedup_key"] for row in rows}
            if new_keys:
                new_events = [event for key, event in unique.items() if key in new_keys]
                await conn.copy_records_to_table(
                    "events",
                    records=[event_record(event) for event in new_events],
                    columns=EVENT_COLUMNS,
                )
                for hook in self.hooks:
                    await hook(conn, new_events)
        return new_keys

    async def remember_nonce(self, provider: str, source: str, nonce: str, digest: str) -> bool:
        """Record a nonce. True: first sighting; False: a redelivery of the same content.

        Raises ``NonceConflictError`` when the nonce was seen with different content.
        """
        async with self.pool.acquire() as conn:
            inserted = await conn.fetchval(
                """INSERT INTO webhook_nonces (provider, source, nonce, digest)
                   VALUES ($1, $2, $3, $4)
                   ON CONFLICT DO NOTHING RETURNING true""",
                provider,
                source,
                nonce,
                digest,
            )
            if inserted:
                return True
            seen = await conn.fetchval(
                "SELECT digest FROM webhook_nonces WHERE provider=$1 AND source=$2 AND nonce=$3",
                provider,
                source,
                nonce,
            )
        if seen is not None and not _same(seen, digest):
            raise NonceConflictError(nonce)
        return False

    async def record_control_message(
        self,
        provider: str,
        source: str,
        kind: str,
        detail: dict[str, Any],
        confirm_url: str | None,
    ) -> int:
        async with self.pool.acquire() as conn:
            message_id: int = await conn.fetchval(
                """INSERT INTO control_messages (provider, source, kind, detail, confirm_url)
                   VALUES ($1, $2, $3, $4, $5) RETURNING id""",
                provider,
                source,
                kind,
                _json(detail),
                confirm_url,
            )
        return message_id

    async def mark_control_confirmed(self, message_id: int, error: str | None) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                """UPDATE control_messages
                   SET confirmed_at = CASE WHEN $2::text IS NULL THEN now() END,
                       confirm_error = $2
                   WHERE id = $1""",
                message_id,
                error,
            )

    async def ping(self) -> bool:
        try:
            async with self.pool.acquire(timeout=2.0) as conn:
                return bool(await conn.fetchval("SELECT true", timeout=2.0))
        except DB_ERRORS:
            return False


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
