"""The counters of the hourly rollups: one column per event type plus the breakdowns the
rates need. The migration's ``stats_hourly`` columns are exactly ``COUNTER_COLUMNS``."""

from __future__ import annotations

from handlers.events import EventType

__all__ = ["COUNTER_COLUMNS", "DETAIL_COLUMNS", "EVENT_TYPE_COLUMNS"]

#: one per event type: how many events of that type
EVENT_TYPE_COLUMNS: tuple[str, ...] = tuple(t.value for t in EventType)

#: breakdowns: bounce classes, machine opens, and first opens / clicks per
#: (provider, message_id, recipient) — the "unique" counts
DETAIL_COLUMNS: tuple[str, ...] = (
    "hard_bounced",
    "soft_bounced",
    "machine_opened",
    "unique_opened",
    "unique_human_opened",
    "unique_clicked",
)

COUNTER_COLUMNS: tuple[str, ...] = EVENT_TYPE_COLUMNS + DETAIL_COLUMNS
