"""The schema snapshot (gateway/storage/schema.sql) is what the migrations build, and the
rollup counters the current trigger and tables keep are exactly the Python counter list
(gateway/query/counters.py), whatever the history of CREATE OR REPLACE in the migrations."""

from __future__ import annotations

import re

import asyncpg

from gateway.query.counters import COUNTER_COLUMNS, EVENT_TYPE_COLUMNS
from gateway.storage.snapshot import REGENERATE, SNAPSHOT_PATH, dump_schema

#: the key columns of each rollup table (everything else in it is a counter)
ROLLUP_KEYS = {
    "stats_hourly": {"hour", "provider", "source", "campaign"},
    "stats_hourly_tags": {"hour", "tag", "provider", "source"},
    "stats_pending": {"hour", "provider", "source", "campaign", "tags"},
}


def test_the_snapshot_is_the_freshly_migrated_schema(fresh_db_url: str) -> None:
    """schema.sql equals the normalized pg_dump of a database migrated from scratch; when a
    migration changes the schema, this fails and names the command that regenerates it."""
    current = dump_schema(fresh_db_url)
    assert SNAPSHOT_PATH.read_text() == current, (
        f"{SNAPSHOT_PATH.name} is stale: run `{REGENERATE}` and commit it"
    )


async def test_the_snapshot_shows_every_table_index_function_and_trigger(
    fresh_db_url: str,
) -> None:
    """Every table, index, function and trigger of the migrated database has its definition
    in the snapshot, so the file is the whole picture (the normalization drops none)."""
    snapshot = SNAPSHOT_PATH.read_text()
    conn = await asyncpg.connect(fresh_db_url)
    try:
        rows = await conn.fetch(
            """SELECT c.relkind::text AS kind, c.relname AS name,
                      coalesce(x.conname, '') AS constraint_name
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_constraint x ON x.conindid = c.oid AND x.contype IN ('p', 'u')
               WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'i', 'I')
               UNION ALL
               SELECT 'f', proname, '' FROM pg_proc p
               JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
               UNION ALL
               SELECT 't', tgname, '' FROM pg_trigger WHERE NOT tgisinternal"""
        )
    finally:
        await conn.close()
    patterns = {
        "r": "CREATE TABLE public.{} ",
        "p": "CREATE TABLE public.{} ",
        "i": "INDEX {} ON ",
        "I": "INDEX {} ON ",
        "f": "CREATE FUNCTION public.{}(",
        "t": "CREATE TRIGGER {} ",
    }
    assert len(rows) > 30
    missing = []
    for row in rows:
        if row["constraint_name"]:  # a primary key / unique constraint's own index
            shown = f"ADD CONSTRAINT {row['constraint_name']} " in snapshot
        else:
            shown = patterns[row["kind"]].format(row["name"]) in snapshot
        if not shown:
            missing.append((row["kind"], row["name"]))
    assert missing == []


async def test_the_rollups_count_exactly_the_counter_list(fresh_db_url: str) -> None:
    """The rollup tables' counter columns and the current hookline_rollup_events trigger
    function (the last CREATE OR REPLACE, read from the catalog) count exactly
    COUNTER_COLUMNS: every event type and every breakdown, nothing more."""
    conn = await asyncpg.connect(fresh_db_url)
    try:
        for table, keys in ROLLUP_KEYS.items():
            rows = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1",
                table,
            )
            counters = {row["column_name"] for row in rows} - keys
            assert counters == set(COUNTER_COLUMNS), table
        function = await conn.fetchval(
            "SELECT pg_get_functiondef('hookline_rollup_events'::regproc)"
        )
        trigger = await conn.fetchval(
            "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'hookline_rollups'"
        )
    finally:
        await conn.close()
    assert "AFTER INSERT ON public.events" in trigger
    assert "EXECUTE FUNCTION hookline_rollup_events()" in trigger
    (insert,) = re.findall(r"INSERT INTO stats_pending \((.*?)\)\s+SELECT", function, re.S)
    inserted = [column.strip() for column in insert.split(",")]
    assert set(inserted) - ROLLUP_KEYS["stats_pending"] == set(COUNTER_COLUMNS)
    # each counter column is filled, in the insert list's order, by one filtered sum of the
    # statement's grouped counts: an event type's column by exactly that event type
    counters = [column for column in inserted if column not in ROLLUP_KEYS["stats_pending"]]
    conditions = re.findall(r"sum\(n\) FILTER \(WHERE (.*?)\), 0\)", function)
    assert len(conditions) == len(counters) == len(COUNTER_COLUMNS)
    for column, condition in zip(counters, conditions, strict=True):
        if column in EVENT_TYPE_COLUMNS:
            assert condition == f"event_type = '{column}'", column
