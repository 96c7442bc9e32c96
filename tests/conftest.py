"""Shared fixtures: one real, throwaway PostgreSQL for the whole test session.

The cluster is started by the tests themselves (embedded binaries, run as an unprivileged
user when the suite runs as root) under a temporary directory, and removed afterwards. Each
test that needs a database gets its own freshly migrated database (``fresh_db_url``), so tests
never see each other's rows.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from gateway.storage.embedded import EmbeddedPostgres
from gateway.storage.migrate import apply_migrations

#: test directories whose every test runs a real server (PostgreSQL, a gateway process,
#: Prometheus, Alertmanager, RabbitMQ, podman)
_SERVER_DIRECTORIES = ("integration", "container")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``integration`` every test that needs a real server: everything under
    tests/integration/ and tests/container/, and any other test that asks for the
    session's PostgreSQL (directly or through ``fresh_db_url``). ``make test-unit`` runs
    the rest (``-m "not integration"``)."""
    tests_root = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(tests_root).parts
        needs_postgres = "pg_server" in getattr(item, "fixturenames", ())
        if parts[0] in _SERVER_DIRECTORIES or needs_postgres:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server for the session (``HOOKLINE_TEST_DATABASE_URL`` is not used:
    the suite always brings its own, so it never touches a real database)."""
    base = Path(tempfile.mkdtemp(prefix="hookline-test-pg-"))
    os.chmod(base, 0o755)
    server = EmbeddedPostgres(base / "data", durable=False)
    server.start()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(pg_server: EmbeddedPostgres) -> str:
    """A migrated template database; per-test databases are cheap copies of it."""

    async def build() -> None:
        admin = await asyncpg.connect(pg_server.url())
        try:
            await admin.execute("CREATE DATABASE hookline_template")
        finally:
            await admin.close()
        conn = await asyncpg.connect(_with_db(pg_server.url(), "hookline_template"))
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    return "hookline_template"


def _with_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
async def fresh_db_url(pg_server: EmbeddedPostgres, template_db: str) -> AsyncIterator[str]:
    """The URL of a new, fully migrated, empty database for one test."""
    name = "t_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(pg_server.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    finally:
        await admin.close()
    yield _with_db(pg_server.url(), name)
    admin = await asyncpg.connect(pg_server.url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
