"""SQL builders for the read queries: parameterised text plus its arguments, never values
spliced into the SQL. Column and table names only ever come from constants here."""

from __future__ import annotations

from typing import Any

import msgspec

from gateway.query.counters import COUNTER_COLUMNS, EVENT_TYPE_COLUMNS, per_tag
from gateway.query.filters import EventFilter, StatsQuery
from gateway.storage.store import EVENT_COLUMNS

__all__ = ["event_search_sql", "event_select", "stats_sql"]

#: an event row as the read side returns it: its id and the stored columns (raw only on request)
_EVENT_FIELDS = ("id", *(column for column in EVENT_COLUMNS if column != "raw"))


def event_select(include_raw: bool) -> str:
    """The select list of an event row (``raw`` is NULL unless asked for)."""
    return ", ".join(_EVENT_FIELDS) + (", raw" if include_raw else ", NULL::jsonb AS raw")


class _Args:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


_encode = msgspec.json.Encoder().encode


def _metadata_clause(key: str, value: str, arg: _Args) -> str:
    """``metadata @> {key: value}``; a value that reads as a JSON number, boolean or null
    also matches that typed value (``order_id:42`` finds ``{"order_id": 42}``), and a list
    holding the value matches too (``{"team": ["a", "b"]}`` is found by ``team:a``)."""
    as_text = arg(_encode({key: value}).decode())
    try:
        typed = msgspec.json.decode(value)
    except msgspec.DecodeError:
        typed = value
    # a tag with several values (SES sends tags as arrays) matches when one of them does
    in_list = arg(_encode({key: [value]}).decode())
    if isinstance(typed, bool | int | float) or (typed is None and value == "null"):
        as_typed = arg(_encode({key: typed}).decode())
        return (
            f"(metadata @> {as_text}::jsonb OR metadata @> {as_typed}::jsonb"
            f" OR metadata @> {in_list}::jsonb)"
        )
    return f"(metadata @> {as_text}::jsonb OR metadata @> {in_list}::jsonb)"


def event_search_sql(query: EventFilter) -> tuple[str, list[Any]]:
    """``GET /v1/events``: newest first, ``limit + 1`` rows (the extra one says "more")."""
    arg = _Args()
    where: list[str] = []
    if query.recipient is not None:
        where.append(f"lower(recipient) = lower({arg(query.recipient)})")
    if query.message_id is not None:
        where.append(f"message_id = {arg(query.message_id)}")
    if query.providers:
        where.append(f"provider = ANY({arg(list(query.providers))}::text[])")
    if query.source is not None:
        where.append(f"source = {arg(query.source)}")
    if query.event_types:
        where.append(f"event_type = ANY({arg(list(query.event_types))}::text[])")
    if query.campaign is not None:
        where.append(f"campaign = {arg(query.campaign)}")
    if query.tags:
        where.append(f"tags @> {arg(list(query.tags))}::text[]")
    for key, value in query.metadata:
        where.append(_metadata_clause(key, value, arg))
    if query.since is not None:
        where.append(f"occurred_at >= {arg(query.since)}")
    if query.until is not None:
        where.append(f"occurred_at < {arg(query.until)}")
    if query.cursor is not None:
        where.append(
            f"(occurred_at, id) < ({arg(query.cursor.occurred_at)}::timestamptz, "
            f"{arg(query.cursor.id)}::bigint)"
        )
    # identifiers come from constants; every value is a $n parameter
    sql = (
        f"SELECT {event_select(query.include_raw)} FROM events"  # noqa: S608
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY occurred_at DESC, id DESC LIMIT {arg(query.limit + 1)}"
    )
    return sql, arg.values


_GROUP_KEYS = {
    "provider": "provider",
    "source": "source",
    "campaign": "NULLIF(campaign, '')",
    "tag": "tag",
    "day": "to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "hour": "to_char(hour AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24\":00:00Z\"')",
}


def stats_sql(query: StatsQuery) -> tuple[str, list[Any]]:
    """``GET /v1/stats`` from the hourly rollups: every hour overlapping [since, until)."""
    arg = _Args()
    counters = ", ".join(COUNTER_COLUMNS)
    # the rollups plus the tallies not folded in yet (identifiers only, from constants)
    if query.group_by == "tag" or query.tag:
        table = (
            f"(SELECT hour, tag, provider, source, {counters} FROM stats_hourly_tags "  # noqa: S608
            f"UNION ALL SELECT * FROM {per_tag('stats_pending')} AS p)"
        )
    else:
        keys = f"hour, provider, source, campaign, {counters}"
        table = f"(SELECT {keys} FROM stats_hourly UNION ALL SELECT {keys} FROM stats_pending)"  # noqa: S608
    where = [
        f"hour > {arg(query.since)}::timestamptz - interval '1 hour'",
        f"hour < {arg(query.until)}::timestamptz",
    ]
    for column, value in (
        ("provider", query.provider),
        ("source", query.source),
        ("campaign", query.campaign),
        ("tag", query.tag),
    ):
        if value is not None:
            where.append(f"{column} = {arg(value)}")
    sums = ", ".join(f"sum({c})::bigint AS {c}" for c in COUNTER_COLUMNS)
    if query.group_by in ("day", "hour"):
        order = "1"
    else:
        volume = " + ".join(f"sum({c})" for c in EVENT_TYPE_COLUMNS)
        order = f"{volume} DESC, 1 NULLS LAST"
    sql = (
        f"SELECT {_GROUP_KEYS[query.group_by]} AS key, {sums} FROM {table} AS r "  # noqa: S608
        f"WHERE {' AND '.join(where)} GROUP BY 1 ORDER BY {order} LIMIT {arg(query.limit)}"
    )
    return sql, arg.values
