"""The counters of the hourly rollups: one column per event type plus the breakdowns the
rates need. The migration's ``stats_hourly`` columns are exactly ``COUNTER_COLUMNS``."""

from __future__ import annotations

from handlers.events import EventType

__all__ = ["COUNTER_COLUMNS", "DETAIL_COLUMNS", "EVENT_TYPE_COLUMNS", "per_tag"]

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


def per_tag(shapes: str) -> str:
    """A subquery giving the rows of ``shapes`` (``stats_pending`` or a CTE of its rows) once
    per distinct tag of each row's tag list, keyed like ``stats_hourly_tags``: a tag repeated
    within one event counts once for that tag."""
    counters = ", ".join(f"p.{c}" for c in COUNTER_COLUMNS)
    return (  # identifiers only, from constants
        f"(SELECT p.hour, t.tag, p.provider, p.source, {counters} "  # noqa: S608
        f"FROM {shapes} AS p, unnest(p.tags) WITH ORDINALITY AS t(tag, i) "
        "WHERE t.tag <> ALL (p.tags[:t.i - 1]))"
    )
