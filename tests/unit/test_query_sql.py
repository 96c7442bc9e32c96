"""The read SQL builders: every client value travels as a $n parameter, never in the text,
and the clauses match the filters given."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.query.cursor import EventCursor
from gateway.query.filters import EventFilter, StatsQuery
from gateway.query.sql import event_search_sql, stats_sql

HOSTILE = "x'); DROP TABLE events; --"


def test_event_search_parameterises_every_value() -> None:
    """A hostile value in every text filter appears only among the arguments; the text has
    one placeholder per argument and keyset order with limit + 1."""
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
    assert "ORDER BY occurred_at DESC, id DESC" in sql
    assert "(occurred_at, id) <" in sql
    assert "lower(recipient) = lower($1)" in sql


def test_metadata_numbers_also_match_typed_values() -> None:
    """``order_id:42`` matches the string "42" or the number 42; text matches only text;
    either also matches a list holding the text (a multi-valued SES tag)."""
    sql, args = event_search_sql(EventFilter(metadata=(("order_id", "42"), ("tier", "gold"))))
    assert args[:5] == [
        '{"order_id":"42"}',
        '{"order_id":["42"]}',
        '{"order_id":42}',
        '{"tier":"gold"}',
        '{"tier":["gold"]}',
    ]
    assert sql.count("metadata @>") == 5 and " OR " in sql


def test_no_filters_is_a_plain_newest_first_page() -> None:
    """Without filters: no WHERE clause, just the keyset order and the limit."""
    sql, args = event_search_sql(EventFilter())
    assert "WHERE" not in sql and args == [51]
    assert "NULL::jsonb AS raw" in sql
    assert ", raw" in event_search_sql(EventFilter(include_raw=True))[0]


def test_stats_reads_rollups_plus_pending_tallies_of_the_right_table() -> None:
    """Campaign, day and hour groupings read the hourly rollups, tag groupings or a tag
    filter the per-tag rollups; both add the tallies not folded yet (per distinct tag for
    the tag rollups); hours overlapping the window count."""
    since, until = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)
    sql, args = stats_sql(StatsQuery(group_by="campaign", since=since, until=until))
    assert "FROM stats_hourly UNION ALL SELECT" in sql and "FROM stats_pending)" in sql
    assert "NULLIF(campaign, '')" in sql and args == [since, until, 1000]
    assert "hour > $1::timestamptz - interval '1 hour'" in sql
    tag_sql, tag_args = stats_sql(
        StatsQuery(group_by="day", since=since, until=until, tag=HOSTILE, provider="ses")
    )
    assert "FROM stats_hourly_tags UNION ALL" in tag_sql and HOSTILE not in tag_sql
    assert "FROM stats_pending WHERE tags <> '{}' GROUP BY hour, provider, source, tags" in tag_sql
    assert tag_args == [since, until, "ses", HOSTILE, 1000]
    assert "ORDER BY 1 " in tag_sql, "time groupings are chronological"
