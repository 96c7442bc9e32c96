"""Migrations that reshape data keep it: a database at an older version upgrades in place."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from gateway.storage.embedded import EmbeddedPostgres
from gateway.storage.migrate import apply_migrations, available_migrations


@pytest.fixture
async def empty_db(pg_server: EmbeddedPostgres) -> AsyncIterator[asyncpg.Connection]:
    name = "m_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(pg_server.url())
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(pg_server.url().rsplit("/", 1)[0] + "/" + name)
    try:
        yield conn
    finally:
        await conn.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def migrate_to(conn: asyncpg.Connection, version: int) -> None:
    """Apply the migrations up to ``version`` as ``apply_migrations`` would have then."""
    await conn.execute(
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for migration in available_migrations():
        if migration.version <= version:
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )


async def test_first_engagements_become_one_row_per_key_with_a_bit_per_kind(
    empty_db: asyncpg.Connection,
) -> None:
    """0006 folds 0003's row per (key, kind) into one row per key: kind 1, 2 and 3 become
    bits 1, 2 and 4, received_at the earliest; later writes see the old kinds as claimed."""
    await migrate_to(empty_db, 5)
    await empty_db.execute(
        "INSERT INTO first_engagements (key, kind, received_at) VALUES "
        "('\\x0a', 1, '2024-05-02T00:00Z'), ('\\x0a', 2, '2024-05-01T00:00Z'), "
        "('\\x0a', 3, '2024-05-03T00:00Z'), ('\\x0b', 1, '2024-05-04T00:00Z'), "
        # a@x.com's (machine) open of m1 at SendGrid, as the old trigger keyed it
        "(decode(md5('sendgrid' || E'\\x1f' || 'm1' || E'\\x1f' || 'a@x.com'), 'hex'), 1, "
        "'2024-05-05T00:00Z')"
    )

    applied = [m.version for m in await apply_migrations(empty_db)]
    assert 6 in applied and applied == sorted(applied) and min(applied) == 6

    rows = await empty_db.fetch(
        "SELECT key, kinds, received_at::text FROM first_engagements WHERE length(key) = 1 "
        "ORDER BY key"
    )
    assert [tuple(r) for r in rows] == [
        (b"\x0a", 7, "2024-05-01 00:00:00+00"),
        (b"\x0b", 1, "2024-05-04 00:00:00+00"),
    ]
    indexes = await empty_db.fetch(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'first_engagements' ORDER BY 1"
    )
    assert [r["indexname"] for r in indexes] == [
        "first_engagements_pkey",
        "first_engagements_received_at",
    ]
    await empty_db.execute(
        "INSERT INTO events (dedup_key, provider, source, event_type, occurred_at, "
        "received_at, recipient, message_id, machine_open) VALUES "
        "('e1', 'sendgrid', 'main', 'opened', '2024-05-06T10:00Z', now(), 'A@x.com', 'm1', "
        "false)"
    )
    firsts = await empty_db.fetchrow(
        "SELECT sum(opened) AS opened, sum(unique_opened) AS opens, "
        "sum(unique_human_opened) AS human FROM stats_pending"
    )
    assert tuple(firsts) == (1, 0, 1), "the open was claimed before; the human open was not"


async def test_pending_rollup_deltas_are_folded_before_their_tables_go(
    empty_db: asyncpg.Connection,
) -> None:
    """0006 replaces the two pending tables by ``stats_pending``: what they held is added
    to the rollups (summed into existing rows, new rows for new keys), nothing is lost."""
    await migrate_to(empty_db, 5)
    await empty_db.execute(
        "INSERT INTO stats_hourly (hour, provider, source, campaign, delivered, opened) "
        "VALUES ('2024-05-01T12:00Z', 'sendgrid', 'main', 'spring', 10, 4);"
        "INSERT INTO stats_hourly_pending (hour, provider, source, campaign, delivered, opened) "
        "VALUES ('2024-05-01T12:00Z', 'sendgrid', 'main', 'spring', 2, 1), "
        "('2024-05-01T12:00Z', 'sendgrid', 'main', 'spring', 3, 0), "
        "('2024-05-01T13:00Z', 'mailgun', 'eu', '', 7, 0);"
        "INSERT INTO stats_hourly_tags_pending (hour, tag, provider, source, delivered) "
        "VALUES ('2024-05-01T12:00Z', 'news', 'sendgrid', 'main', 5)"
    )

    await apply_migrations(empty_db)

    hourly = await empty_db.fetch(
        "SELECT provider, delivered, opened FROM stats_hourly ORDER BY hour"
    )
    assert [tuple(r) for r in hourly] == [("sendgrid", 15, 5), ("mailgun", 7, 0)]
    tags = await empty_db.fetch("SELECT tag, delivered FROM stats_hourly_tags")
    assert [tuple(r) for r in tags] == [("news", 5)]
    gone = await empty_db.fetchval(
        "SELECT count(*) FROM pg_class WHERE relname LIKE 'stats_hourly%pending'"
    )
    assert gone == 0


async def test_single_valued_ses_tags_become_scalars_and_auto_replies_get_a_counter(
    empty_db: asyncpg.Connection,
) -> None:
    """0008 turns SES metadata's one-element arrays into scalars (several values, other
    providers and other shapes untouched), and the rollups count auto_replied apart."""
    await migrate_to(empty_db, 6)
    await empty_db.execute(
        "INSERT INTO events (dedup_key, provider, source, event_type, occurred_at, "
        "received_at, metadata) VALUES "
        "('s1', 'ses', 'main', 'delivered', '2024-05-06T10:00Z', now(), "
        """'{"gw_message_id": ["gw-7c1e2a"], "team": ["a", "b"], "n": 1}'), """
        "('s2', 'ses', 'main', 'delivered', '2024-05-06T10:00Z', now(), '{}'), "
        "('g1', 'sendgrid', 'main', 'delivered', '2024-05-06T10:00Z', now(), "
        """'{"list": ["kept"]}')"""
    )

    assert 8 in [m.version for m in await apply_migrations(empty_db)]

    rows = await empty_db.fetch("SELECT dedup_key, metadata::text FROM events ORDER BY 1")
    assert [tuple(r) for r in rows] == [
        ("g1", '{"list": ["kept"]}'),
        ("s1", '{"n": 1, "team": ["a", "b"], "gw_message_id": "gw-7c1e2a"}'),
        ("s2", "{}"),
    ]
    await empty_db.execute(
        "INSERT INTO events (dedup_key, provider, source, event_type, occurred_at, "
        "received_at) VALUES ('a1', 'sparkpost', 'main', 'auto_replied', "
        "'2024-05-06T10:00Z', now())"
    )
    counted = await empty_db.fetchrow(
        "SELECT sum(auto_replied) AS auto, sum(bounced) AS bounced FROM stats_pending "
        "WHERE provider = 'sparkpost'"
    )
    assert tuple(counted) == (1, 0)


async def test_events_stored_before_0010_read_as_their_own_time(
    empty_db: asyncpg.Connection,
) -> None:
    """0010 adds events.time_source: rows stored before read as 'event' (as they were
    presented until then); new rows keep the source they are written with."""
    await migrate_to(empty_db, 9)
    await empty_db.execute(
        "INSERT INTO events (dedup_key, provider, source, event_type, occurred_at, received_at) "
        "VALUES ('old', 'sendgrid', 'main', 'delivered', '2024-05-06T10:00Z', now())"
    )

    assert 10 in [m.version for m in await apply_migrations(empty_db)]

    await empty_db.execute(
        "INSERT INTO events (dedup_key, provider, source, event_type, occurred_at, received_at, "
        "time_source) VALUES ('new', 'ses', 'main', 'delivered', now(), now(), 'envelope')"
    )
    rows = await empty_db.fetch("SELECT dedup_key, time_source FROM events ORDER BY dedup_key")
    assert [tuple(r) for r in rows] == [("new", "envelope"), ("old", "event")]
