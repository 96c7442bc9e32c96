"""Start-up against one PostgreSQL is safe for any number of replicas starting at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import asyncpg
import msgspec
import pytest

from gateway.settings import Settings
from gateway.storage.database import open_database
from gateway.storage.embedded import EmbeddedPostgres
from gateway.storage.pool import create_pool
from gateway.storage.store import EventStore


@pytest.fixture
async def empty_db_url(pg_server: EmbeddedPostgres) -> AsyncIterator[str]:
    """A new database with nothing in it (no migrations), as a fresh install has."""
    name = "r_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(pg_server.url())
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_server.url().rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_replicas_opening_a_fresh_database_at_once_all_start(
    empty_db_url: str, tmp_path: Path
) -> None:
    """Six starters (migrations, then today's partitions) on an empty database at the same
    moment: every one opens it, and each partition exists once."""
    settings = msgspec.convert(
        {
            "database": {"url": empty_db_url, "pool_min_size": 1, "pool_max_size": 2},
            "storage": {"data_dir": str(tmp_path)},
        },
        Settings,
    )
    outcomes = await asyncio.gather(
        *(open_database(settings) for _ in range(6)), return_exceptions=True
    )
    databases = [o for o in outcomes if not isinstance(o, BaseException)]
    try:
        assert [o for o in outcomes if isinstance(o, BaseException)] == []
        async with databases[0].pool.acquire() as conn:
            partitions = await conn.fetchval(
                "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
            )
            migrations = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert partitions == 6  # the default one, and yesterday .. today + 3
        assert migrations >= 6
    finally:
        for database in databases:
            await database.close()


async def test_concurrent_partition_creation_for_a_new_day_never_fails(
    fresh_db_url: str,
) -> None:
    """Many stores creating the same future day's partition at once (as replicas do at
    midnight) all succeed."""
    pools = [await create_pool(fresh_db_url, min_size=1, max_size=1) for _ in range(6)]
    try:
        day = date(2031, 5, 17)
        await asyncio.gather(
            *(EventStore(pool).ensure_partitions(day, days_ahead=2) for pool in pools)
        )
        async with pools[0].acquire() as conn:
            names = await conn.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'events'::regclass "
                "AND c.relname BETWEEN 'events_20310516' AND 'events_20319999'"
            )
        assert sorted(r["relname"] for r in names) == [
            "events_20310516",
            "events_20310517",
            "events_20310518",
            "events_20310519",
        ]
    finally:
        for pool in pools:
            await pool.close()
