"""``hookline migrate``: apply the SQL migrations and exit (also done at start-up)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from gateway.cli._common import add_config_argument, load_or_exit


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "migrate", help="apply database migrations and exit"
    )
    add_config_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncpg

    from gateway.storage.database import resolve_database_url
    from gateway.storage.migrate import apply_migrations

    settings = load_or_exit(args)

    async def migrate() -> list[str]:
        url, embedded = resolve_database_url(settings)
        try:
            conn = await asyncpg.connect(url)
            try:
                return [f"{m.version:04d}_{m.name}" for m in await apply_migrations(conn)]
            finally:
                await conn.close()
        finally:
            if embedded is not None:
                embedded.stop()

    applied = asyncio.run(migrate())
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0
