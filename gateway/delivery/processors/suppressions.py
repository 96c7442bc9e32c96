"""List hygiene: the suppression list, fed by bounces, complaints and (un)subscribes.

* hard bounce, complaint, unsubscribe: the address is suppressed at once, with the reason
  and the event (dedup key) that caused it;
* soft (and undetermined) bounces are counted per address; ``soft_bounce_threshold`` of them
  within ``soft_bounce_window_seconds`` quarantine the address (reason ``soft_bounce``) for
  ``soft_bounce_quarantine_seconds`` (0: until removed);
* ``resubscribed`` lifts an unsubscribe that happened before it (never a bounce, complaint
  or manual entry).

One row per address (compared case-insensitively, in the canonical form of
``handlers.addresses``: a display name, comment or IDN spelling is the same address). A
stronger reason replaces a weaker one (hard_bounce > complaint > manual > unsubscribe >
soft_bounce); an expired quarantine is replaced by anything. A batch of claimed rows is
applied in one transaction together with the removal of those rows from the outbox, so
each event acts exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
import msgspec
import structlog

from gateway.clock import Clock
from gateway.delivery.models import ClaimedRow
from gateway.delivery.payload import SuppressionSignal, decode_signal
from gateway.settings import SuppressionSettings
from handlers.addresses import address_key, canonical_address
from observability.metrics import Metrics

__all__ = [
    "RANK",
    "Listing",
    "SuppressionPlan",
    "SuppressionProcessor",
    "address_key",
    "decide_writes",
    "plan_suppressions",
]

log = structlog.get_logger("hookline.suppressions")

RANK: Mapping[str, int] = {
    "soft_bounce": 1,
    "unsubscribe": 2,
    "manual": 3,
    "complaint": 4,
    "hard_bounce": 5,
}
_IMMEDIATE = {"complained": "complaint", "unsubscribed": "unsubscribe"}


@dataclass(frozen=True, slots=True)
class Listing:
    """An address to put on the list (or to keep there with a stronger reason)."""

    key: str
    address: str
    reason: str
    dedup_key: str | None
    provider: str | None
    occurred_at: datetime | None
    expires_at: datetime | None = None


@dataclass
class SuppressionPlan:
    """What a batch of signals asks for, before looking at the database."""

    #: the strongest immediate listing per address
    listings: dict[str, Listing] = field(default_factory=dict)
    #: resubscribes: lift unsubscribes that occurred at or before this time
    lifts: dict[str, datetime] = field(default_factory=dict)
    #: soft bounces to count: (address key, dedup key, occurred_at)
    soft_bounces: list[tuple[str, str, datetime]] = field(default_factory=list)
    #: the latest soft bounce per address (the cause, should it reach the threshold)
    latest_soft: dict[str, SuppressionSignal] = field(default_factory=dict)


def plan_suppressions(signals: Iterable[SuppressionSignal]) -> SuppressionPlan:
    """Reduce a batch of signals, in event-time order, to per-address actions (pure)."""
    plan = SuppressionPlan()
    for signal in sorted(signals, key=lambda s: s.occurred_at):
        key = address_key(signal.recipient)
        if not key:
            continue
        if signal.event_type == "resubscribed":
            previous = plan.lifts.get(key)
            plan.lifts[key] = max(previous, signal.occurred_at) if previous else signal.occurred_at
            current = plan.listings.get(key)
            if current is not None and current.reason == "unsubscribe":
                del plan.listings[key]
            continue
        if signal.event_type == "bounced" and signal.bounce_class != "hard":
            plan.soft_bounces.append((key, signal.dedup_key, signal.occurred_at))
            plan.latest_soft[key] = signal
            continue
        reason = (
            "hard_bounce" if signal.event_type == "bounced" else _IMMEDIATE.get(signal.event_type)
        )
        if reason is None:
            continue
        current = plan.listings.get(key)
        if current is None or RANK[reason] > RANK[current.reason]:
            plan.listings[key] = Listing(
                key,
                canonical_address(signal.recipient) or signal.recipient.strip(),
                reason,
                signal.dedup_key,
                signal.provider,
                signal.occurred_at,
            )
    return plan


def decide_writes(
    listings: Iterable[Listing],
    existing: Mapping[str, tuple[str, datetime | None]],
    now: datetime,
) -> list[tuple[Listing, bool]]:
    """Which listings to write, and whether each adds to the list (for the metric).

    ``existing`` maps address keys already on the list to (reason, expires_at).
    """
    writes: list[tuple[Listing, bool]] = []
    for listing in listings:
        found = existing.get(listing.key)
        if found is None:
            writes.append((listing, True))
            continue
        reason, expires_at = found
        expired = expires_at is not None and expires_at <= now
        if expired or RANK[listing.reason] > RANK.get(reason, 0):
            writes.append((listing, True))
        elif listing.reason == "soft_bounce" and reason == "soft_bounce":
            writes.append((listing, False))  # a new quarantine period, not a new entry
    return writes


_CLAIMED = "DELETE FROM outbox WHERE id = ANY($1::bigint[]) AND claim_token = $2 RETURNING id"
_COUNT_SOFT = """
INSERT INTO soft_bounces (address_key, dedup_key, occurred_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
ON CONFLICT DO NOTHING
"""
_PRUNE_SOFT_FOR = """
DELETE FROM soft_bounces WHERE address_key = ANY($1::text[]) AND occurred_at <= $2
"""
_SOFT_COUNTS = """
SELECT address_key, count(*) AS n FROM soft_bounces
WHERE address_key = ANY($1::text[]) AND occurred_at > $2
GROUP BY address_key
"""
_LIFT = """
DELETE FROM suppressions AS s
USING unnest($1::text[], $2::timestamptz[]) AS r(key, at)
WHERE s.address_key = r.key AND s.reason = 'unsubscribe'
  AND (s.occurred_at IS NULL OR s.occurred_at <= r.at)
RETURNING s.address_key
"""
_EXISTING = """
SELECT address_key, reason, expires_at FROM suppressions
WHERE address_key = ANY($1::text[])
FOR UPDATE
"""
UPSERT = """
INSERT INTO suppressions AS s
    (address_key, address, reason, dedup_key, provider, occurred_at, created_at, expires_at,
     note)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                     $6::timestamptz[], $7::timestamptz[], $8::timestamptz[], $9::text[])
ON CONFLICT (address_key) DO UPDATE SET
    address = EXCLUDED.address, reason = EXCLUDED.reason, dedup_key = EXCLUDED.dedup_key,
    provider = EXCLUDED.provider, occurred_at = EXCLUDED.occurred_at,
    created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at, note = EXCLUDED.note
WHERE (s.expires_at IS NOT NULL AND s.expires_at <= EXCLUDED.created_at)
   OR hookline_suppression_rank(EXCLUDED.reason) > hookline_suppression_rank(s.reason)
   OR (EXCLUDED.reason = 'soft_bounce' AND s.reason = 'soft_bounce')
"""
_PRUNE = "DELETE FROM soft_bounces WHERE occurred_at <= $1"


async def upsert_listings(
    conn: asyncpg.Connection,
    listings: Sequence[Listing],
    now: datetime,
    note: str | None = None,
) -> None:
    """Write listings (the rank guard in SQL keeps a stronger reason in place)."""
    await conn.execute(
        UPSERT,
        [item.key for item in listings],
        [item.address for item in listings],
        [item.reason for item in listings],
        [item.dedup_key for item in listings],
        [item.provider for item in listings],
        [item.occurred_at for item in listings],
        [now for _ in listings],
        [item.expires_at for item in listings],
        [note for _ in listings],
    )


class SuppressionProcessor:
    """Applies claimed ``suppressions`` outbox rows to the suppression list."""

    def __init__(
        self, pool: asyncpg.Pool, settings: SuppressionSettings, metrics: Metrics, clock: Clock
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.metrics = metrics
        self.clock = clock

    async def process(self, rows: Sequence[ClaimedRow]) -> int:
        """Apply ``rows`` (all claimed with one token); return how many were applied."""
        if not rows:
            return 0
        now = self.clock.now()
        window_start = now - timedelta(seconds=self.settings.soft_bounce_window_seconds)
        added: list[str] = []
        async with self.pool.acquire() as conn, conn.transaction():
            owned = {
                record["id"]
                for record in await conn.fetch(_CLAIMED, [row.id for row in rows], rows[0].token)
            }
            signals = []
            for row in rows:
                if row.id not in owned:
                    continue
                try:
                    signals.append(decode_signal(row.payload))
                except msgspec.DecodeError:
                    log.error("suppressions.bad_payload", outbox_id=row.id)
            plan = plan_suppressions(signals)
            listings = dict(plan.listings)
            if plan.soft_bounces:
                keys = sorted({key for key, _, _ in plan.soft_bounces})
                await conn.execute(
                    _COUNT_SOFT,
                    [key for key, _, _ in plan.soft_bounces],
                    [dedup for _, dedup, _ in plan.soft_bounces],
                    [at for _, _, at in plan.soft_bounces],
                )
                await conn.execute(_PRUNE_SOFT_FOR, keys, window_start)
                for record in await conn.fetch(_SOFT_COUNTS, keys, window_start):
                    key = record["address_key"]
                    if record["n"] < self.settings.soft_bounce_threshold or key in listings:
                        continue
                    cause = plan.latest_soft[key]
                    listings[key] = Listing(
                        key,
                        canonical_address(cause.recipient) or cause.recipient.strip(),
                        "soft_bounce",
                        cause.dedup_key,
                        cause.provider,
                        cause.occurred_at,
                        self._quarantine_end(now),
                    )
            if plan.lifts:
                lifted = await conn.fetch(_LIFT, list(plan.lifts), list(plan.lifts.values()))
                if lifted:
                    log.info("suppressions.lifted", count=len(lifted), reason="unsubscribe")
            if listings:
                existing = {
                    record["address_key"]: (record["reason"], record["expires_at"])
                    for record in await conn.fetch(_EXISTING, sorted(listings))
                }
                writes = decide_writes(listings.values(), existing, now)
                if writes:
                    await upsert_listings(conn, [listing for listing, _ in writes], now)
                added = [listing.reason for listing, counts in writes if counts]
        for reason in added:
            self.metrics.suppressions_added.labels(reason).inc()
        if added:
            log.info("suppressions.added", count=len(added), reasons=sorted(set(added)))
        return len(owned)

    def _quarantine_end(self, now: datetime) -> datetime | None:
        seconds = self.settings.soft_bounce_quarantine_seconds
        return now + timedelta(seconds=seconds) if seconds > 0 else None

    async def prune(self) -> int:
        """Forget soft bounces older than the counting window."""
        cutoff = self.clock.now() - timedelta(seconds=self.settings.soft_bounce_window_seconds)
        async with self.pool.acquire() as conn:
            status = await conn.execute(_PRUNE, cutoff)
        return int(status.rsplit(" ", 1)[-1])
