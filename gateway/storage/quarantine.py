"""The quarantine table: records Hookline acknowledged but could not store as events.

``stage="parse"``: an adapter rejected one item of a well-formed batch (``raw`` is the item).
``stage="store"``: PostgreSQL refused the normalized event (``event`` keeps it exactly, as
msgpack like the spool, so a replay writes the very same event). Nothing here is lost: a
record stays until it is replayed successfully or deleted by an operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from gateway.storage.data_errors import is_data_error
from gateway.storage.storable import clean_json, clean_text, msgpack_safe, storable_event
from handlers.events import EmailEvent

__all__ = [
    "ERROR_MAX_CHARS",
    "QuarantineEntry",
    "QuarantineItem",
    "QuarantineStore",
    "decode_event",
    "encode_event",
]

#: the error text kept per record (a driver message; never contains a credential)
ERROR_MAX_CHARS = 1000

_encode_event = msgspec.msgpack.Encoder().encode
_decode_event = msgspec.msgpack.Decoder(EmailEvent).decode
_encode_json = msgspec.json.Encoder().encode


def encode_event(event: EmailEvent) -> bytes:
    try:
        return _encode_event(event)
    except OverflowError:  # an integer beyond 64 bits in its raw payload
        return _encode_event(msgpack_safe(event))


def decode_event(data: bytes) -> EmailEvent:
    return _decode_event(data)


class QuarantineItem(msgspec.Struct, frozen=True, kw_only=True):
    """One record to quarantine (also the spool's second record kind, see spool.py)."""

    provider: str
    source: str
    received_at: datetime
    #: "parse" or "store"
    stage: str
    #: a bounded code (``observability.metrics.QUARANTINE_REASONS``)
    reason: str
    error: str
    field: str | None = None
    dedup_key: str | None = None
    #: the raw item (parse) or the event's raw payload (store), made storable
    raw: Any = None
    #: the event PostgreSQL refused (store stage)
    event: EmailEvent | None = None

    @classmethod
    def for_event(cls, event: EmailEvent, reason: str, error: str) -> QuarantineItem:
        """A store-stage record; the event is kept made storable (a lone surrogate cannot
        even be encoded to keep it otherwise)."""
        event = storable_event(event)
        return cls(
            provider=event.provider,
            source=event.source,
            received_at=event.received_at,
            stage="store",
            reason=reason,
            error=clean_text(error)[:ERROR_MAX_CHARS],
            dedup_key=event.dedup_key,
            raw=event.raw,
            event=event,
        )


class QuarantineEntry(msgspec.Struct, kw_only=True):
    """A quarantined record as the admin API shows it."""

    id: int
    provider: str
    source: str
    received_at: datetime
    quarantined_at: datetime
    stage: str
    reason: str
    field: str | None
    error: str
    dedup_key: str | None
    raw: Any
    #: the kept event (store stage), decoded
    event: EmailEvent | None
    replayed_at: datetime | None
    replay_error: str | None


_INSERT = """
INSERT INTO quarantine (provider, source, received_at, stage, reason, field, error,
                        dedup_key, raw, event)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (dedup_key) WHERE stage = 'store' AND replayed_at IS NULL DO NOTHING
"""

_SELECT = """SELECT id, provider, source, received_at, quarantined_at, stage, reason, field,
error, dedup_key, raw, event, replayed_at, replay_error FROM quarantine"""


def _row(item: QuarantineItem, *, with_raw: bool = True) -> tuple[Any, ...]:
    return (
        clean_text(item.provider),
        clean_text(item.source),
        item.received_at,
        item.stage,
        item.reason,
        clean_text(item.field) if item.field is not None else None,
        clean_text(item.error)[:ERROR_MAX_CHARS],
        item.dedup_key,
        _encode_json(clean_json(item.raw)) if with_raw and item.raw is not None else None,
        encode_event(item.event) if item.event is not None else None,
    )


def _entry(row: asyncpg.Record) -> QuarantineEntry:
    event = row["event"]
    return QuarantineEntry(
        id=row["id"],
        provider=row["provider"],
        source=row["source"],
        received_at=row["received_at"],
        quarantined_at=row["quarantined_at"],
        stage=row["stage"],
        reason=row["reason"],
        field=row["field"],
        error=row["error"],
        dedup_key=row["dedup_key"],
        raw=msgspec.json.decode(row["raw"]) if row["raw"] is not None else None,
        event=decode_event(event) if event is not None else None,
        replayed_at=row["replayed_at"],
        replay_error=row["replay_error"],
    )


class QuarantineStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(self, items: Sequence[QuarantineItem]) -> None:
        """Keep ``items`` (all in one transaction). A raw payload jsonb still refuses (say,
        nested deeper than PostgreSQL parses) is left out of that record only; the event
        bytes and the error are always kept."""
        if not items:
            return
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await conn.executemany(_INSERT, [_row(item) for item in items])
                return
            except Exception as exc:
                if not is_data_error(exc):
                    raise
            async with conn.transaction():
                for item in items:
                    try:
                        async with conn.transaction():
                            await conn.execute(_INSERT, *_row(item))
                    except Exception as exc:
                        if not is_data_error(exc):
                            raise
                        await conn.execute(_INSERT, *_row(item, with_raw=False))

    async def list(
        self,
        *,
        provider: str | None = None,
        source: str | None = None,
        stage: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[QuarantineEntry]:
        """Newest first; ``before_id`` continues a previous page."""
        rows = await self.pool.fetch(
            _SELECT
            + """ WHERE ($1::text IS NULL OR provider = $1)
                  AND ($2::text IS NULL OR source = $2)
                  AND ($3::text IS NULL OR stage = $3)
                  AND ($4::bigint IS NULL OR id < $4)
                ORDER BY id DESC LIMIT $5""",
            provider,
            source,
            stage,
            before_id,
            limit,
        )
        return [_entry(row) for row in rows]

    async def get(self, entry_id: int) -> QuarantineEntry | None:
        row = await self.pool.fetchrow(_SELECT + " WHERE id = $1", entry_id)
        return _entry(row) if row is not None else None

    async def delete(self, entry_id: int) -> bool:
        deleted = await self.pool.fetchval(
            "DELETE FROM quarantine WHERE id = $1 RETURNING true", entry_id
        )
        return bool(deleted)

    async def mark_replayed(self, entry_id: int) -> None:
        await self.pool.execute(
            "UPDATE quarantine SET replayed_at = now(), replay_error = NULL WHERE id = $1",
            entry_id,
        )

    async def mark_failed(self, entry_id: int, error: str) -> None:
        await self.pool.execute(
            "UPDATE quarantine SET replay_error = $2 WHERE id = $1",
            entry_id,
            clean_text(error)[:ERROR_MAX_CHARS],
        )
