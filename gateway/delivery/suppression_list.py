"""The suppression list as the admin API sees it: list, look up, add and remove addresses.

Addresses are compared case-insensitively. Expired soft-bounce quarantines are not listed
and do not count as suppressed. Removing an address also forgets its soft bounces, so a
quarantine starts counting afresh.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from gateway.clock import Clock
from gateway.delivery.processors.suppressions import RANK, Listing, upsert_listings
from handlers.addresses import address_key, canonical_address
from observability.metrics import Metrics

__all__ = ["SuppressionEntry", "SuppressionList"]

_SELECT = """SELECT address_key, address, reason, dedup_key, provider, occurred_at, created_at,
                    expires_at, note
             FROM suppressions"""


class SuppressionEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One suppressed address."""

    address: str
    reason: str
    #: the event that caused it (null for manual entries)
    dedup_key: str | None
    provider: str | None
    occurred_at: datetime | None
    created_at: datetime
    #: soft-bounce quarantines end; null: until removed
    expires_at: datetime | None
    note: str | None
    #: the case-insensitive key (the pagination cursor)
    key: str


class SuppressionList:
    def __init__(self, pool: asyncpg.Pool, metrics: Metrics, clock: Clock) -> None:
        self.pool = pool
        self.metrics = metrics
        self.clock = clock

    async def list(
        self, *, reason: str | None = None, after: str | None = None, limit: int = 50
    ) -> list[SuppressionEntry]:
        """Active entries in address order; ``after`` continues from a previous page."""
        async with self.pool.acquire() as conn:
            records = await conn.fetch(
                _SELECT
                + """ WHERE (expires_at IS NULL OR expires_at > $1)
                      AND ($2::text IS NULL OR reason = $2)
                      AND ($3::text IS NULL OR address_key > $3)
                    ORDER BY address_key LIMIT $4""",
                self.clock.now(),
                reason,
                after,
                limit,
            )
        return [_entry(record) for record in records]

    async def get(self, address: str) -> SuppressionEntry | None:
        async with self.pool.acquire() as conn:
            record = await conn.fetchrow(
                _SELECT + " WHERE address_key = $2 AND (expires_at IS NULL OR expires_at > $1)",
                self.clock.now(),
                address_key(address),
            )
        return _entry(record) if record is not None else None

    async def add(self, address: str, note: str | None = None) -> tuple[SuppressionEntry, bool]:
        """Suppress ``address`` manually. An address already suppressed for an equal or
        stronger reason is left as it is: (entry, False)."""
        now = self.clock.now()
        key = address_key(address)
        async with self.pool.acquire() as conn, conn.transaction():
            current = await conn.fetchrow(
                _SELECT + " WHERE address_key = $2 AND (expires_at IS NULL OR expires_at > $1)"
                " FOR UPDATE",
                now,
                key,
            )
            if current is not None and RANK.get(current["reason"], 0) >= RANK["manual"]:
                return _entry(current), False
            written = canonical_address(address) or address.strip()
            listing = Listing(key, written, "manual", None, None, None)
            await upsert_listings(conn, [listing], now, note)
            record = await conn.fetchrow(_SELECT + " WHERE address_key = $1", key)
        assert record is not None
        self.metrics.suppressions_added.labels("manual").inc()
        return _entry(record), True

    async def remove(self, address: str) -> bool:
        """Take ``address`` off the list (whatever the reason); False if it was not on it."""
        key = address_key(address)
        async with self.pool.acquire() as conn, conn.transaction():
            deleted = await conn.fetchval(
                "DELETE FROM suppressions WHERE address_key = $1 RETURNING address_key", key
            )
            await conn.execute("DELETE FROM soft_bounces WHERE address_key = $1", key)
        return deleted is not None


def _entry(record: Any) -> SuppressionEntry:
    return SuppressionEntry(
        address=record["address"],
        reason=record["reason"],
        dedup_key=record["dedup_key"],
        provider=record["provider"],
        occurred_at=record["occurred_at"],
        created_at=record["created_at"],
        expires_at=record["expires_at"],
        note=record["note"],
        key=record["address_key"],
    )
