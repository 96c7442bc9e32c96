"""The read side (issue #7): event search, message timelines, recipient history, inactive
recipients (activity folded per day), deliverability stats from hourly rollups, and
retention by partition."""

from __future__ import annotations

from gateway.query.activity import ActivityFolder
from gateway.query.compaction import RollupCompactor
from gateway.query.cursor import EventCursor
from gateway.query.errors import QueryError
from gateway.query.filters import (
    EventFilter,
    InactiveQuery,
    MessageQuery,
    RecipientQuery,
    StatsQuery,
    event_filter,
    inactive_query,
    message_query,
    parse_time,
    recipient_query,
    stats_query,
)
from gateway.query.rates import compute_rates
from gateway.query.reads import ReadService
from gateway.query.retention import Retention, RetentionReport
from gateway.query.status import STATUS_PRECEDENCE, furthest_status

__all__ = [
    "STATUS_PRECEDENCE",
    "ActivityFolder",
    "EventCursor",
    "EventFilter",
    "InactiveQuery",
    "MessageQuery",
    "QueryError",
    "ReadService",
    "RecipientQuery",
    "Retention",
    "RetentionReport",
    "RollupCompactor",
    "StatsQuery",
    "compute_rates",
    "event_filter",
    "furthest_status",
    "inactive_query",
    "message_query",
    "parse_time",
    "recipient_query",
    "stats_query",
]
