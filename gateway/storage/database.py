"""Where the database comes from: the configured URL, or the embedded cluster."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg
import structlog

from gateway.settings import Settings
from gateway.storage.embedded import EmbeddedPostgres
from gateway.storage.errors import DB_ERRORS
from gateway.storage.migrate import apply_migrations
from gateway.storage.pool import create_pool
from gateway.storage.store import EventStore

__all__ = [
    "UNREACHABLE_ERRORS",
    "Database",
    "StorageNotConnectedError",
    "open_database",
    "open_database_or_defer",
    "prepare_schema",
    "resolve_database_url",
]

log = structlog.get_logger("hookline.storage")

#: what "PostgreSQL cannot be used right now" looks like (refused, timed out, starting up,
#: shutting down, not accepting this login yet): the gateway keeps running on its spool
UNREACHABLE_ERRORS = DB_ERRORS  # the connector retries on these


class StorageNotConnectedError(Exception):
    """PostgreSQL has not been reachable (and the schema ready) since this process started."""


@dataclass
class Database:
    url: str
    pool: asyncpg.Pool
    store: EventStore
    embedded: EmbeddedPostgres | None = field(default=None)
    #: set once the schema is migrated and today's partitions exist (at open, or later by
    #: ``gateway.storage.connector.StorageConnector`` after a start with the database down)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def close(self) -> None:
        await self.pool.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)


def resolve_database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The configured URL, or start the embedded cluster under the data directory."""
    if settings.database.url:
        return settings.database.url, None
    embedded = EmbeddedPostgres(settings.data_dir)
    return embedded.start(), embedded


async def prepare_schema(url: str, store: EventStore, settings: Settings) -> None:
    """Apply pending migrations (under their advisory lock), then ensure the partitions."""
    await _migrate(url, settings)
    await store.ensure_partitions(days_ahead=settings.storage.partitions_ahead_days)


async def _migrate(url: str, settings: Settings) -> None:
    conn = await asyncpg.connect(url, timeout=settings.database.connect_timeout_seconds)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()


async def _pool(url: str, settings: Settings, *, min_size: int) -> asyncpg.Pool:
    return await create_pool(
        url,
        min_size=min_size,
        max_size=settings.database.pool_max_size,
        command_timeout=settings.database.command_timeout_seconds,
        connect_timeout=settings.database.connect_timeout_seconds,
    )


async def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    url, embedded = await asyncio.to_thread(resolve_database_url, settings)
    try:
        if migrate:
            await _migrate(url, settings)
        pool = await _pool(url, settings, min_size=settings.database.pool_min_size)
    except BaseException:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        raise
    store = EventStore(pool)
    await store.ensure_partitions(days_ahead=settings.storage.partitions_ahead_days)
    database = Database(url=url, pool=pool, store=store, embedded=embedded)
    database.connected.set()
    return database


async def open_database_or_defer(settings: Settings) -> Database:
    """``open_database``, except that an unreachable PostgreSQL is not fatal: the database
    comes back not ``connected``, with a pool that has not connected yet, for a
    ``StorageConnector`` to finish (migrations, partitions) once PostgreSQL answers.

    The embedded cluster (no URL) is still started first; failing to start it is fatal."""
    url, embedded = await asyncio.to_thread(resolve_database_url, settings)
    pool: asyncpg.Pool | None = None
    try:
        await _migrate(url, settings)
        pool = await _pool(url, settings, min_size=settings.database.pool_min_size)
        store = EventStore(pool)
        await store.ensure_partitions(days_ahead=settings.storage.partitions_ahead_days)
    except UNREACHABLE_ERRORS as exc:
        log.error(
            "storage.unavailable_at_start",
            error=type(exc).__name__,
            detail=str(exc)[:300],
            action="accepting webhooks into the spool; connecting in the background",
        )
        if pool is None:
            pool = await _pool(url, settings, min_size=0)  # connects on first use, not now
        return Database(url=url, pool=pool, store=EventStore(pool), embedded=embedded)
    except BaseException:
        if pool is not None:
            await pool.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        raise
    database = Database(url=url, pool=pool, store=store, embedded=embedded)
    database.connected.set()
    return database
