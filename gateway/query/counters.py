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
    """A subquery giving the counters of ``shapes`` (``stats_pending`` or a CTE of its rows)
    per hour, provider, source and distinct tag, keyed like ``stats_hourly_tags``: a tag
    repeated within one event counts once for that tag. The rows are summed per tag list
    first and only those sums are unnested: a few dozen lists where there are thousands of
    rows (unnesting every row was a third of the compactor's fold)."""
    sums = ", ".join(f"sum({c}) AS {c}" for c in COUNTER_COLUMNS)
    counters = ", ".join(f"p.{c}" for c in COUNTER_COLUMNS)
    return (  # identifiers only, from constants
        f"(SELECT p.hour, t.tag, p.provider, p.source, {counters} "  # noqa: S608
        f"FROM (SELECT hour, provider, source, tags, {sums} FROM {shapes} "
        "WHERE tags <> '{}' GROUP BY hour, provider, source, tags) AS p, "
        "unnest(p.tags) WITH ORDINALITY AS t(tag, i) WHERE t.tag <> ALL (p.tags[:t.i - 1]))"
    )
