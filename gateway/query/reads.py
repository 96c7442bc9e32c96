"""The read queries behind the admin API: event search, message timeline, recipient
history, inactive recipients and stats. Each method takes validated input (see
``filters``) and returns a response model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg
import msgspec

from gateway.query.activity import OPEN_START_SQL, RECIPIENT_ACTIVITY_SQL, inactive_sql
from gateway.query.counters import COUNTER_COLUMNS, EVENT_TYPE_COLUMNS
from gateway.query.cursor import EventCursor, encode_address_cursor
from gateway.query.filters import (
    EventFilter,
    InactiveQuery,
    MessageQuery,
    RecipientQuery,
    StatsQuery,
)
from gateway.query.models import (
    EventItem,
    EventPage,
    InactivePage,
    MessageTimeline,
    RecipientActivity,
    RecipientHistory,
    StatsGroup,
    StatsReport,
)
from gateway.query.rates import compute_details, compute_rates
from gateway.query.sql import event_search_sql, event_select, stats_sql
from gateway.query.status import furthest_status
from handlers.addresses import address_key, canonical_address

__all__ = ["ReadService", "event_item"]

_decode = msgspec.json.decode


def event_item(row: Mapping[str, Any]) -> EventItem:
    """An ``events`` row (selected with ``event_select``) as a response item."""
    raw = row["raw"]
    return EventItem(
        id=row["id"],
        provider=row["provider"],
        source=row["source"],
        event_type=row["event_type"],
        esp_event=row["esp_event"],
        occurred_at=row["occurred_at"],
        received_at=row["received_at"],
        recipient=row["recipient"],
        message_id=row["message_id"],
        provider_event_id=row["provider_event_id"],
        dedup_key=row["dedup_key"],
        bounce_class=row["bounce_class"],
        reason=row["reason"],
        smtp_status=row["smtp_status"],
        diagnostic=row["diagnostic"],
        url=row["url"],
        user_agent=row["user_agent"],
        ip=row["ip"],
        machine_open=row["machine_open"],
        campaign=row["campaign"],
        tags=list(row["tags"]),
        metadata=_decode(row["metadata"]),
        raw=_decode(raw) if raw is not None else None,
        time_source=row["time_source"],
    )


def _activity(address: str, row: Mapping[str, Any] | None) -> RecipientActivity | None:
    """None for an address with no delivery, click or human open (all days NULL)."""
    if row is None or (row["first_delivered_on"] is None and row["last_engaged_on"] is None):
        return None
    return RecipientActivity(
        address=address,
        first_delivered_on=row["first_delivered_on"],
        last_delivered_on=row["last_delivered_on"],
        last_engaged_on=row["last_engaged_on"],
    )


_SUPPRESSION_SQL = """
SELECT to_jsonb(s) AS entry,
       (to_jsonb(s) ->> 'expires_at') IS NULL
           OR (to_jsonb(s) ->> 'expires_at')::timestamptz > now() AS active
FROM suppressions s
WHERE s.address_key = $1
"""


class ReadService:
    """Runs the read queries on the pool (no state of its own)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def search_events(self, query: EventFilter) -> EventPage:
        sql, args = event_search_sql(query)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        items = [event_item(row) for row in rows[: query.limit]]
        next_cursor = None
        if len(rows) > query.limit:
            last = items[-1]
            next_cursor = EventCursor(last.occurred_at, last.id).encode()
        return EventPage(items=items, next_cursor=next_cursor)

    async def message(self, message_id: str, query: MessageQuery) -> MessageTimeline | None:
        """The message's events in time order and each recipient's status; None if unknown."""
        provider_clause = "" if query.provider is None else " AND provider = $2"
        args: list[Any] = [message_id] if query.provider is None else [message_id, query.provider]
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {event_select(query.include_raw)}, lower(recipient) AS address "  # noqa: S608
                f"FROM events WHERE message_id = $1{provider_clause} "
                f"ORDER BY occurred_at, id LIMIT {query.limit + 1}",
                *args,
            )
            if not rows:
                return None
            if len(rows) <= query.limit:
                # every event is in hand (the usual case): no second pass over the partitions
                types: dict[str, set[str]] = {}
                for row in rows:
                    if row["address"] is not None:
                        types.setdefault(row["address"], set()).add(row["event_type"])
                status = {address: furthest_status(seen) for address, seen in types.items()}
                providers = sorted({row["provider"] for row in rows})
            else:
                summary = await conn.fetch(
                    "SELECT lower(recipient) AS address, array_agg(DISTINCT event_type) AS types, "  # noqa: S608
                    "array_agg(DISTINCT provider) AS providers FROM events "
                    f"WHERE message_id = $1{provider_clause} GROUP BY 1",
                    *args,
                )
                status = {
                    row["address"]: furthest_status(row["types"])
                    for row in summary
                    if row["address"] is not None
                }
                providers = sorted({p for row in summary for p in row["providers"]})
        events = [event_item(row) for row in rows[: query.limit]]
        return MessageTimeline(
            message_id=message_id,
            provider=events[0].provider,
            providers=providers,
            recipients=sorted(status),
            status=dict(sorted(status.items())),
            events=events,
            truncated=len(rows) > query.limit,
        )

    async def recipient(self, address: str, query: RecipientQuery) -> RecipientHistory:
        # stored recipients are canonical (handlers.addresses): look up the same spelling
        address = canonical_address(address) or address
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {event_select(query.include_raw)} FROM events "  # noqa: S608
                "WHERE lower(recipient) = lower($1) "
                "ORDER BY occurred_at DESC, id DESC LIMIT $2",
                address,
                query.limit,
            )
            counts = await conn.fetch(
                "SELECT event_type, count(*) AS n FROM events "
                "WHERE lower(recipient) = lower($1) GROUP BY 1",
                address,
            )
            activity = await conn.fetchrow(RECIPIENT_ACTIVITY_SQL, address)
            normalized: str = await conn.fetchval("SELECT lower($1)", address)
            suppression, suppressed = await self._suppression(conn, address)
        by_type = {row["event_type"]: row["n"] for row in counts}
        return RecipientHistory(
            address=normalized,
            suppressed=suppressed,
            suppression=suppression,
            counts={t: by_type[t] for t in EVENT_TYPE_COLUMNS if t in by_type},
            activity=_activity(normalized, activity),
            events=[event_item(row) for row in rows],
        )

    @staticmethod
    async def _suppression(
        conn: asyncpg.Connection, address: str
    ) -> tuple[dict[str, Any] | None, bool]:
        """The suppression-list entry as stored (the delivery side owns the table; an
        expired soft-bounce quarantine is shown but not in force) and whether it is in force
        (no ``expires_at`` or one in the future)."""
        row = await conn.fetchrow(_SUPPRESSION_SQL, address_key(address))
        if row is None:
            return None, False
        entry = _decode(row["entry"])
        return entry, bool(row["active"])

    async def inactive(self, query: InactiveQuery) -> InactivePage:
        async with self.pool.acquire() as conn:
            open_start = await conn.fetchval(OPEN_START_SQL)
            args: list[Any] = [query.cutoff, query.limit + 1, open_start]
            if query.after is not None:
                args.append(query.after)
            rows = await conn.fetch(inactive_sql(after=query.after is not None), *args)
        items = [
            item
            for row in rows[: query.limit]
            if (item := _activity(row["address"], row)) is not None
        ]
        next_cursor = encode_address_cursor(items[-1].address) if len(rows) > query.limit else None
        return InactivePage(items=items, next_cursor=next_cursor)

    async def stats(self, query: StatsQuery) -> StatsReport:
        sql, args = stats_sql(query)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        groups = []
        for row in rows:
            sums = {column: int(row[column] or 0) for column in COUNTER_COLUMNS}
            groups.append(
                StatsGroup(
                    key=row["key"],
                    counts={t: sums[t] for t in EVENT_TYPE_COLUMNS},
                    details=compute_details(sums),
                    rates=compute_rates(sums),
                )
            )
        return StatsReport(
            group_by=query.group_by, since=query.since, until=query.until, groups=groups
        )
