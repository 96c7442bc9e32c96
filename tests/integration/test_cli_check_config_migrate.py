"""``hookline check-config`` and ``hookline migrate`` as an operator runs them: a child
process, a config file, a real PostgreSQL; what they print and their exit codes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from gateway.storage.embedded import EmbeddedPostgres
from hookline_testing import samples_for
from tests.integration._gateway_process import ROOT, clean_environment, to_toml

SPEC, _ = samples_for("sendgrid").make_source("main")
MIGRATIONS = sorted(p.stem for p in (ROOT / "gateway/storage/migrations").glob("*.sql"))


def hookline(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=ROOT,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_config(
    tmp_path: Path, database_url: str, extra_sources: tuple[dict[str, str], ...] = ()
) -> Path:
    config = {
        "database": {"url": database_url},
        "storage": {"data_dir": str(tmp_path / "data")},
        "sources": [
            {"provider": "sendgrid", "name": "main", "signing_key": SPEC.signing_key},
            *extra_sources,
        ],
    }
    path = tmp_path / "hookline.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    return path


@pytest.fixture
async def empty_db_url(pg_server: EmbeddedPostgres) -> AsyncIterator[str]:
    """A database with no tables at all (not the migrated template)."""
    name = "empty_" + uuid.uuid4().hex[:12]
    admin = await asyncpg.connect(pg_server.url())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield pg_server.url().rsplit("/", 1)[0] + "/" + name
    admin = await asyncpg.connect(pg_server.url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_migrate_applies_every_migration_once_then_reports_up_to_date(
    empty_db_url: str, tmp_path: Path
) -> None:
    """On an empty database ``hookline migrate`` applies every migration file, in order,
    names them and exits 0, and the tables exist; run again, it applies nothing and says
    the database is up to date."""
    config = write_config(tmp_path, empty_db_url)
    first = hookline("migrate", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "applied: " + ", ".join(MIGRATIONS)

    conn = await asyncpg.connect(empty_db_url)
    try:
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    finally:
        await conn.close()
    assert {"events", "suppressions", "outbox", "dlq"} <= tables

    again = hookline("migrate", "--config", str(config))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "database is up to date"


def test_check_config_summarises_a_valid_config_and_refuses_a_bad_one(
    tmp_path: Path,
) -> None:
    """A valid config: exit 0, the routes of its sources and the database kind, and no
    secret. An unknown provider: exit 2, one line naming the problem, no traceback."""
    url = "postgresql://hookline:db-Secret-Pass@127.0.0.1:9/hookline"
    good = hookline("check-config", "--config", str(write_config(tmp_path, url)))
    assert good.returncode == 0, good.stderr
    assert "source: POST /webhooks/sendgrid/main" in good.stdout.splitlines()
    assert "database: configured URL" in good.stdout.splitlines()
    assert "db-Secret-Pass" not in good.stdout + good.stderr
    assert SPEC.signing_key not in good.stdout + good.stderr

    bad_config = write_config(
        tmp_path, url, ({"provider": "carrier-pigeon", "name": "x", "token": "t"},)
    )
    bad = hookline("check-config", "--config", str(bad_config))
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.startswith("hookline: configuration error:"), bad.stderr
    assert "carrier-pigeon" in bad.stderr and "Traceback" not in bad.stderr
