"""The read endpoints' query builders: how validated parameter values become a query, and
the rules a schema cannot state (dates, cursors, since before until, tag not with
campaign). Bounds, patterns, enums and unknown or repeated names are Litestar's and the
input guard's (tests/integration/test_query_events.py, test_admin_validation.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.query.cursor import EventCursor, decode_address_cursor, encode_address_cursor
from gateway.query.errors import QueryError
from gateway.query.filters import (
    event_filter,
    inactive_query,
    message_query,
    parse_time,
    recipient_query,
    stats_query,
)

NOW = datetime(2024, 5, 10, 12, 30, tzinfo=UTC)


def test_times_accept_dates_datetimes_offsets_and_relative_ages() -> None:
    """Dates are UTC midnight, naive date-times are UTC, offsets are converted, and
    ``30d``/``12h``/``15m``/``90s``/``2w`` count back from now."""
    assert parse_time("since", "2024-05-01", NOW) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_time("since", "2024-05-01T10:00:00", NOW) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_time("since", "2024-05-01T10:00:00Z", NOW) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_time("since", "2024-05-01T12:00:00+02:00", NOW) == datetime(
        2024, 5, 1, 10, tzinfo=UTC
    )
    assert parse_time("since", "30d", NOW) == NOW - timedelta(days=30)
    assert parse_time("since", "12h", NOW) == NOW - timedelta(hours=12)
    assert parse_time("since", "15m", NOW) == NOW - timedelta(minutes=15)
    assert parse_time("since", "90s", NOW) == NOW - timedelta(seconds=90)
    assert parse_time("since", "2w", NOW) == NOW - timedelta(weeks=2)


@pytest.mark.parametrize(
    "text", ["yesterday", "2024-13-01", "2024-05-01T25:00", "5y", "-3d", "", "999999999w"]
)
def test_malformed_times_name_the_parameter(text: str) -> None:
    """Anything else is rejected with the parameter name and the accepted formats."""
    with pytest.raises(QueryError) as info:
        parse_time("until", text, NOW)
    assert info.value.parameter == "until"
    assert "ISO 8601" in str(info.value)


def test_event_filter_builds_every_filter() -> None:
    """Each documented filter lands in its field: comma-separated choices become tuples
    (without repeats), repeated tags and metadata lists, times and the cursor their values,
    the recipient its canonical form."""
    cursor = EventCursor(datetime(2024, 5, 1, tzinfo=UTC), 42).encode()
    query = event_filter(
        NOW,
        recipient="A@Example.com",
        message_id="m-1",
        provider="sendgrid,mailgun,sendgrid",
        source="main",
        event_type="bounced,dropped",
        campaign="spring",
        tag=["news", "promo", "news"],
        metadata=["order_id:o-1", "url:https://x.test/a"],
        since="2024-05-01",
        until="1d",
        include="raw",
        limit=10,
        cursor=cursor,
    )
    assert query.recipient == "A@example.com", "canonical: the domain is lower-cased"
    assert query.message_id == "m-1"
    assert query.providers == ("sendgrid", "mailgun")
    assert query.source == "main"
    assert query.event_types == ("bounced", "dropped")
    assert query.campaign == "spring"
    assert query.tags == ("news", "promo")
    assert query.metadata == (("order_id", "o-1"), ("url", "https://x.test/a"))
    assert query.since == datetime(2024, 5, 1, tzinfo=UTC)
    assert query.until == NOW - timedelta(days=1)
    assert query.include_raw is True
    assert query.limit == 10
    assert query.cursor == EventCursor(datetime(2024, 5, 1, tzinfo=UTC), 42)


def test_no_parameters_build_the_defaults() -> None:
    """Absent parameters mean no filter and the documented default limits."""
    assert event_filter(NOW) == event_filter(NOW, limit=50)
    assert event_filter(NOW).providers == () and event_filter(NOW).include_raw is False
    assert message_query() == message_query(limit=1000)
    assert recipient_query(include="raw").include_raw is True
    assert recipient_query().limit == 100


@pytest.mark.parametrize(
    ("arguments", "parameter", "words"),
    [
        ({"since": "last week"}, "since", "not a date/time"),
        ({"since": "2024-05-02", "until": "2024-05-01"}, "since", "before until"),
        ({"cursor": "e1.1.99999999999999999999"}, "cursor", "malformed"),
    ],
)
def test_event_filter_rejections_say_why(
    arguments: dict[str, str], parameter: str, words: str
) -> None:
    """What no schema states (a time's value, since before until, a cursor's position) is
    a QueryError naming the parameter."""
    with pytest.raises(QueryError) as info:
        event_filter(NOW, **arguments)  # type: ignore[arg-type]
    assert info.value.parameter == parameter
    assert words in str(info.value)


def test_stats_query_defaults_to_last_30_days_by_provider() -> None:
    """No parameters: group by provider over [now - 30d, now)."""
    query = stats_query(NOW)
    assert (query.group_by, query.since, query.until) == ("provider", NOW - timedelta(30), NOW)


def test_stats_query_rejects_tags_split_by_campaign_and_empty_windows() -> None:
    """Tags cannot be split by campaign (their rollups span campaigns), neither by grouping
    nor by filtering; since must be before until (also the default until, now)."""
    with pytest.raises(QueryError, match="span campaigns"):
        stats_query(NOW, group_by="tag", campaign="spring")
    with pytest.raises(QueryError, match="span campaigns"):
        stats_query(NOW, group_by="campaign", tag="news")
    with pytest.raises(QueryError, match="span campaigns"):
        stats_query(NOW, tag="news", campaign="spring")
    with pytest.raises(QueryError, match="before until"):
        stats_query(NOW, since="2024-05-11")
    assert stats_query(NOW, tag="news").tag == "news"


def test_inactive_query_computes_the_cutoff() -> None:
    """The cutoff is the UTC day ``inactive_days`` before today; the cursor is decoded."""
    query = inactive_query(NOW, inactive_days=60, cursor=encode_address_cursor("a@example.com"))
    assert query.cutoff == date(2024, 3, 11)
    assert query.after == "a@example.com"


def test_cursors_round_trip_and_reject_tampering() -> None:
    """Event and address cursors decode to what was encoded; other tokens are malformed."""
    cursor = EventCursor(datetime(2024, 5, 1, 10, 11, 12, 123456, tzinfo=UTC), 987654321)
    assert EventCursor.decode(cursor.encode()) == cursor
    assert decode_address_cursor(encode_address_cursor("a+b@example.com")) == "a+b@example.com"
    for token in (
        "",
        "!!!",
        encode_address_cursor("x"),
        "ZTE6YWJjOmRlZg",
        "e" * 3000,
        "e1.1.99999999999999999999",  # an id beyond bigint
        "e1.999999999999999999999.1",  # a time beyond datetime
        "e1.1.1\x00",
    ):
        with pytest.raises(QueryError, match="malformed cursor"):
            EventCursor.decode(token)
    with pytest.raises(QueryError, match="malformed cursor"):
        decode_address_cursor(cursor.encode())
