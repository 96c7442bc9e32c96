"""The schema snapshot: ``gateway/storage/schema.sql`` shows the current definition of every
table, index, function and trigger, as the migrations leave a fresh database.

The migrations are history (a trigger redefined by a later ``CREATE OR REPLACE`` reads, in
the files, as every version it ever had); the snapshot is the present. It is generated, never
edited: ``make schema`` (``python -m gateway.storage.snapshot``) migrates a throwaway embedded
PostgreSQL and writes ``pg_dump --schema-only`` without the dump's session noise.
``tests/integration/test_schema_snapshot.py`` fails when the file is stale.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg

from gateway.storage.embedded import EmbeddedPostgres, find_pg_bin
from gateway.storage.migrate import apply_migrations

__all__ = ["REGENERATE", "SNAPSHOT_PATH", "dump_schema", "migrated_schema", "normalize"]

SNAPSHOT_PATH = Path(__file__).with_name("schema.sql")
#: the one command that rewrites the snapshot (named in the stale-snapshot failure)
REGENERATE = "make schema"

_HEADER = f"""\
-- The current schema: every table, index, function and trigger as the migrations in
-- gateway/storage/migrations/ leave a fresh database (pg_dump --schema-only).
-- Generated: do not edit. Regenerate with `{REGENERATE}` (python -m gateway.storage.snapshot).
"""

#: pg_dump lines that are about the dump session, not the schema: psql meta-commands
#: (``\\restrict`` carries a random key), SET / set_config, versions, the banner
_NOISE = re.compile(
    r"^(\\(un)?restrict .*|SET .*|SELECT pg_catalog\.set_config\(.*|"
    r"-- Dumped (from|by) .*|-- PostgreSQL database dump.*)$"
)


def normalize(dump: str) -> str:
    """``pg_dump`` output without its session noise, with the snapshot's header."""
    lines = [
        line.rstrip().replace("; Schema: public; Owner: -", "")
        for line in dump.splitlines()
        if not _NOISE.match(line) and line.rstrip() != "--"  # "--": the frames of each title
    ]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return _HEADER + "\n" + text + "\n"


def dump_schema(url: str, bin_dir: Path | None = None) -> str:
    """The normalized schema of the database at ``url``."""
    pg_dump = (bin_dir or find_pg_bin()) / "pg_dump"
    result = subprocess.run(
        [str(pg_dump), "--schema-only", "--no-owner", "--no-privileges", "--dbname", url],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "LC_ALL": "C", "LANG": "C"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"pg_dump failed ({result.returncode}): {result.stderr.strip()}")
    return normalize(result.stdout)


def migrated_schema() -> str:
    """Migrate a fresh database on a throwaway embedded PostgreSQL and dump its schema."""
    base = Path(tempfile.mkdtemp(prefix="hookline-schema-"))
    os.chmod(base, 0o755)  # noqa: S103 - the unprivileged postgres user must enter it
    server = EmbeddedPostgres(base / "data", durable=False)
    try:
        admin_url = server.start()
        url = admin_url.rsplit("/", 1)[0] + "/hookline_schema"
        asyncio.run(_migrate(admin_url, url))
        return dump_schema(url)
    finally:
        server.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


async def _migrate(admin_url: str, url: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute("CREATE DATABASE hookline_schema")
    finally:
        await admin.close()
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()


def main() -> int:
    SNAPSHOT_PATH.write_text(migrated_schema())
    print(f"wrote {SNAPSHOT_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
