"""Where the database comes from: the configured URL, or the embedded cluster."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from gateway.settings import Settings
from gateway.storage.embedded import EmbeddedPostgres
from gateway.storage.migrate import apply_migrations
from gateway.storage.pool import create_pool
from gateway.storage.store import EventStore

__all__ = ["Database", "open_database", "resolve_database_url"]


@dataclass
class Database:
    url: str
    pool: asyncpg.Pool
    store: EventStore
    embedded: EmbeddedPostgres | None = field(default=None)

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


async def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    url, embedded = await asyncio.to_thread(resolve_database_url, settings)
    try:
        if migrate:
            conn = await asyncpg.connect(url, timeout=settings.database.connect_timeout_seconds)
            try:
                await apply_migrations(conn)
            finally:
                await conn.close()
        pool = await create_pool(
            url,
            min_size=settings.database.pool_min_size,
            max_size=settings.database.pool_max_size,
            command_timeout=settings.database.command_timeout_seconds,
            connect_timeout=settings.database.connect_timeout_seconds,
        )
    except BaseException:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        raise
    store = EventStore(pool)
    await store.ensure_partitions()
    return Database(url=url, pool=pool, store=store, embedded=embedded)
