"""Query-string validation of the read endpoints: what is accepted, and every 400 reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.query.cursor import EventCursor, decode_address_cursor, encode_address_cursor
from gateway.query.errors import QueryError
from gateway.query.filters import (
    parse_event_filter,
    parse_inactive_query,
    parse_stats_query,
    parse_time,
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


def test_event_filter_parses_every_filter() -> None:
    """Each documented filter lands in its field; lists are comma-separated or repeated."""
    cursor = EventCursor(datetime(2024, 5, 1, tzinfo=UTC), 42).encode()
    query = parse_event_filter(
        {
            "recipient": ["A@Example.com"],
            "message_id": ["m-1"],
            "provider": ["sendgrid,mailgun"],
            "source": ["main"],
            "event_type": ["bounced,dropped"],
            "campaign": ["spring"],
            "tag": ["news", "promo"],
            "metadata": ["order_id:o-1", "url:https://x.test/a"],
            "since": ["2024-05-01"],
            "until": ["1d"],
            "include": ["raw"],
            "limit": ["10"],
            "cursor": [cursor],
        },
        NOW,
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


@pytest.mark.parametrize(
    ("params", "parameter", "words"),
    [
        ({"colour": ["red"]}, "colour", "unknown parameter"),
        ({"limit": ["1001"]}, "limit", "between 1 and 1000"),
        ({"limit": ["0"]}, "limit", "between 1 and 1000"),
        ({"limit": ["ten"]}, "limit", "not an integer"),
        ({"since": ["last week"]}, "since", "not a date/time"),
        ({"since": ["2024-05-02"], "until": ["2024-05-01"]}, "since", "before until"),
        ({"provider": ["hotmail"]}, "provider", "unknown value"),
        ({"event_type": ["read"]}, "event_type", "unknown value"),
        ({"include": ["everything"]}, "include", "unknown value"),
        ({"metadata": ["no-colon"]}, "metadata", "key:value"),
        ({"metadata": [":v"]}, "metadata", "key:value"),
        ({"recipient": ["a@x", "b@x"]}, "recipient", "more than once"),
        ({"recipient": [""]}, "recipient", "empty"),
        ({"recipient": ["a\x00b"]}, "recipient", "NUL"),
        ({"campaign": ["x" * 1025]}, "campaign", "longer than"),
        ({"cursor": ["not-a-cursor"]}, "cursor", "malformed"),
    ],
)
def test_event_filter_rejections_say_why(
    params: dict[str, list[str]], parameter: str, words: str
) -> None:
    """Unknown filters, out-of-range limits, bad dates, values and cursors are QueryErrors
    naming the parameter."""
    with pytest.raises(QueryError) as info:
        parse_event_filter(params, NOW)
    assert info.value.parameter == parameter
    assert words in str(info.value)


def test_stats_query_defaults_to_last_30_days_by_provider() -> None:
    """No parameters: group by provider over [now - 30d, now)."""
    query = parse_stats_query({}, NOW)
    assert (query.group_by, query.since, query.until) == ("provider", NOW - timedelta(30), NOW)


def test_stats_query_rejects_bad_groupings_and_combinations() -> None:
    """group_by takes exactly one of the documented groupings; tags cannot be split by
    campaign (their rollups span campaigns)."""
    with pytest.raises(QueryError, match="unknown value 'week'"):
        parse_stats_query({"group_by": ["week"]}, NOW)
    with pytest.raises(QueryError, match="exactly one"):
        parse_stats_query({"group_by": ["day,hour"]}, NOW)
    with pytest.raises(QueryError, match="between 1 and 10000"):
        parse_stats_query({"limit": ["10001"]}, NOW)
    with pytest.raises(QueryError, match="span campaigns"):
        parse_stats_query({"group_by": ["tag"], "campaign": ["spring"]}, NOW)
    with pytest.raises(QueryError, match="span campaigns"):
        parse_stats_query({"group_by": ["campaign"], "tag": ["news"]}, NOW)


def test_inactive_query_needs_days_and_computes_the_cutoff() -> None:
    """inactive_days is required and bounded; the cutoff is the UTC day that many days
    before today."""
    query = parse_inactive_query({"inactive_days": ["60"]}, NOW)
    assert query.cutoff == date(2024, 3, 11)
    with pytest.raises(QueryError, match="required"):
        parse_inactive_query({}, NOW)
    with pytest.raises(QueryError, match="between 1 and"):
        parse_inactive_query({"inactive_days": ["0"]}, NOW)


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
