"""The read SQL builders: every client value travels as a $n parameter, never in the text.

What the SQL does (filters, keyset order, include=raw, rollups plus pending tallies, the
time window) is checked by running it against PostgreSQL in
tests/integration/test_query_events.py and test_query_stats.py, not by comparing its text
with a copy of itself here."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.query.cursor import EventCursor
from gateway.query.filters import EventFilter, StatsQuery
from gateway.query.sql import event_search_sql, stats_sql

HOSTILE = "x'); DROP TABLE events; --"


def test_event_search_parameterises_every_value() -> None:
    """A hostile value in every text filter appears only among the arguments; the text has
    one placeholder per argument, and the limit travels as limit + 1."""
    cursor = EventCursor(datetime(2024, 5, 1, tzinfo=UTC), 7)
    query = EventFilter(
        recipient=HOSTILE,
        message_id=HOSTILE,
        providers=("sendgrid",),
        source=HOSTILE,
        event_types=("bounced",),
        campaign=HOSTILE,
        tags=(HOSTILE,),
        metadata=((HOSTILE, HOSTILE),),
        since=datetime(2024, 4, 1, tzinfo=UTC),
        until=datetime(2024, 6, 1, tzinfo=UTC),
        limit=25,
        cursor=cursor,
    )
    sql, args = event_search_sql(query)
    assert HOSTILE not in sql and "DROP" not in sql
    assert f"${len(args)}" in sql and f"${len(args) + 1}" not in sql
    assert HOSTILE in args and ["sendgrid"] in args and ["bounced"] in args
    assert args[-1] == 26, "one extra row tells whether there is a next page"
    # kept as text: PostgreSQL happens to return ties in id order without the tie-break, so
    # no query against it fails when ", id DESC" is dropped (the cursor needs it)
    assert "ORDER BY occurred_at DESC, id DESC" in sql


def test_metadata_numbers_also_match_typed_values() -> None:
    """``order_id:42`` is sent as the string "42" and as the number 42; text only as text;
    either also as a list holding the text (a multi-valued SES tag)."""
    sql, args = event_search_sql(EventFilter(metadata=(("order_id", "42"), ("tier", "gold"))))
    assert args[:5] == [
        '{"order_id":"42"}',
        '{"order_id":["42"]}',
        '{"order_id":42}',
        '{"tier":"gold"}',
        '{"tier":["gold"]}',
    ]
    assert f"${len(args)}" in sql and f"${len(args) + 1}" not in sql


def test_no_filters_sends_only_the_limit() -> None:
    """Without filters the only parameter is the default limit plus one."""
    sql, args = event_search_sql(EventFilter())
    assert args == [51]
    assert "$1" in sql and "$2" not in sql


def test_stats_parameterises_the_window_filters_and_limit() -> None:
    """The window, the filters and the limit are parameters, in that order; a hostile
    tag never reaches the text."""
    since, until = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)
    sql, args = stats_sql(StatsQuery(group_by="campaign", since=since, until=until))
    assert args == [since, until, 1000]
    assert "$3" in sql and "$4" not in sql
    tag_sql, tag_args = stats_sql(
        StatsQuery(group_by="day", since=since, until=until, tag=HOSTILE, provider="ses")
    )
    assert HOSTILE not in tag_sql and "DROP" not in tag_sql
    assert tag_args == [since, until, "ses", HOSTILE, 1000]
    assert "$5" in tag_sql and "$6" not in tag_sql
