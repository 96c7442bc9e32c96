"""Batch benchmark: PostgreSQL alone with the full schema against Hookline fed batches, in one
run on this machine, with the ratio and a loss check.

    .venv/bin/python bench/batch_bench.py [--duration 15] [--batch 100] [--writers 4]

* PostgreSQL alone: pre-normalized batches of ``--batch`` events written by ``--writers``
  connections into a fresh migrated database (durable: fsync and synchronous_commit on),
  each batch in one transaction with the statements ``EventStore.write_events`` runs
  (claim the dedup keys in ``event_keys``, COPY the events), so every index and the
  rollup trigger do their work. The rows are encoded once beforehand (COPY text, a key
  placeholder substituted per batch): the client costs next to nothing, and the figure is
  what PostgreSQL itself sustains.
* Hookline: ``hookline serve`` as shipped, driven by wrk replaying pre-signed SendGrid
  requests of ``--batch`` unique events (bench/traffic.py's traffic, bench/ingest_bench.py's
  plumbing).

Every case gets a fresh copy of one migrated template database.

Both stores are counted afterwards: every acknowledged event must be in ``events``.
Needs ``wrk`` (Debian package). Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest_bench import (  # noqa: E402
    TEMPLATE_DB,
    bench_env,
    build_template,
    count_rows,
    free_port,
    fresh_database,
    hookline_config,
    postgres_pid,
    run_wrk,
    start,
    stop,
    wait_http,
    with_db,
)
from bench.proc_stats import cpu_seconds  # noqa: E402
from bench.traffic import SCHEMES, make_source, sendgrid, write_replay_set  # noqa: E402
from gateway.storage.embedded import EmbeddedPostgres  # noqa: E402
from gateway.storage.migrate import available_migrations  # noqa: E402
from gateway.storage.pool import create_pool  # noqa: E402
from gateway.storage.store import EVENT_COLUMNS, EventStore, event_record  # noqa: E402
from handlers.base import SourceSpec, WebhookRequest  # noqa: E402

PYTHON = sys.executable
#: substituted by the batch number in every dedup key, message id and recipient
PLACEHOLDER = "@N@"
#: distinct template batches (different seeds) the writers rotate through
TEMPLATES = 16
#: numbers the batches of every run in this process (each run's keys stay new)
_BATCH_NUMBERS = itertools.count()


@dataclass(frozen=True)
class Template:
    """One pre-normalized batch: its COPY text and dedup keys, each with ``PLACEHOLDER``."""

    copy_text: bytes
    keys: tuple[str, ...]


@dataclass(frozen=True)
class AloneResult:
    events_per_s: float
    written: int
    stored: int
    #: PostgreSQL's CPU time per event stored (all its processes): far less sensitive than
    #: events/s to other load on a shared machine; 2 cores / this is the CPU-bound ceiling
    cpu_us_per_event: float
    #: WAL PostgreSQL wrote per event stored (pg_stat_wal: the whole cluster)
    wal_bytes_per_event: float


@dataclass(frozen=True)
class HooklineResult:
    events_per_s: float
    acknowledged: int
    stored: int
    wraps: int
    errors: int
    p99_ms: float


def postgres_cpu_seconds(pg: EmbeddedPostgres) -> float:
    """CPU time of the cluster: the postmaster with its reaped children (backends that
    exited) plus every live child process."""
    postmaster = postgres_pid(pg)
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # u, s, cu, cs
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                children.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return total + cpu_seconds(children)


# -- PostgreSQL alone ----------------------------------------------------------------------


async def fresh_copy(admin_url: str, name: str) -> str:
    """A fresh database ``name`` copied from the migrated template."""
    return await fresh_database(admin_url, name, TEMPLATE_DB)


async def create_database_before(admin_url: str, name: str, version: int) -> str:
    """A fresh database ``name`` with the migrations below ``version`` only (the schema
    before a change, for a same-run comparison); return its URL."""
    other = await fresh_database(admin_url, name)
    conn = await asyncpg.connect(other)
    try:
        for migration in available_migrations():
            if migration.version < version:
                await conn.execute(migration.sql)
    finally:
        await conn.close()
    await _partitions(other)
    return other


async def build_templates(
    url: str, spec: SourceSpec, batch: int, kinds: tuple[str, ...] = ("delivered",)
) -> list[Template]:
    """Parse ``TEMPLATES`` SendGrid batches as the gateway would and encode each as the COPY
    text PostgreSQL itself produces for those rows (through a scratch table). The batches
    take their SendGrid event type from ``kinds`` in turn (Hookline's run sends delivered)."""
    received = datetime.now(UTC)
    pool = await create_pool(url, min_size=1, max_size=1)
    templates: list[Template] = []
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                "DROP TABLE IF EXISTS bench_template; "
                "CREATE UNLOGGED TABLE bench_template (LIKE events INCLUDING DEFAULTS); "
                "ALTER TABLE bench_template DROP COLUMN id"
            )
            samples = SCHEMES["sendgrid"].samples
            for seed in range(TEMPLATES):
                body = samples.example_body(
                    batch, seed=7_000_000 + seed, event=kinds[seed % len(kinds)]
                )
                request = WebhookRequest("POST", "", {}, body)
                events = sendgrid.ADAPTER.parse(request, spec, received).events
                records = []
                for event in events:
                    row = list(event_record(event))
                    row[0] = f"{row[0]}:{PLACEHOLDER}"  # dedup_key
                    row[7] = f"{PLACEHOLDER}{row[7]}"  # recipient
                    row[8] = f"{row[8]}{PLACEHOLDER}"  # message_id
                    records.append(tuple(row))
                await conn.execute("TRUNCATE bench_template")
                await conn.copy_records_to_table(
                    "bench_template", records=records, columns=EVENT_COLUMNS
                )
                out = io.BytesIO()
                await conn.copy_from_query(
                    f"SELECT {', '.join(EVENT_COLUMNS)} FROM bench_template",
                    output=out,
                    format="text",
                )
                keys = tuple(str(r[0]) for r in records)
                templates.append(Template(out.getvalue(), keys))
            await conn.execute("DROP TABLE bench_template")
    finally:
        await pool.close()
    return templates


async def postgres_alone(
    pg: EmbeddedPostgres, url: str, templates: list[Template], duration: float, writers: int
) -> AloneResult:
    """Events/s ``writers`` connections store into the database at ``url`` (in ``pg``'s
    cluster) from pre-normalized batches (see the module)."""
    written = 0
    deadline = time.monotonic() + duration
    received = datetime.now(UTC)

    async def writer() -> None:
        nonlocal written
        conn = await asyncpg.connect(url)
        try:
            while time.monotonic() < deadline:
                n = next(_BATCH_NUMBERS)
                template = templates[n % len(templates)]
                tag = str(n)
                keys = [key.replace(PLACEHOLDER, tag) for key in template.keys]
                async with conn.transaction():
                    rows = await conn.fetch(
                        """INSERT INTO event_keys (dedup_key, received_at)
                           SELECT k, $2 FROM unnest($1::text[]) AS k
                           ON CONFLICT DO NOTHING
                           RETURNING dedup_key""",
                        keys,
                        received,
                    )
                    if len(rows) != len(keys):
                        raise RuntimeError("a bench key was not new: the bench is broken")
                    await conn.copy_to_table(
                        "events",
                        source=io.BytesIO(template.copy_text.replace(b"@N@", tag.encode())),
                        columns=EVENT_COLUMNS,
                        format="text",
                    )
                written += len(keys)
        finally:
            await conn.close()

    wal = await _wal_bytes(url)
    started, cpu = time.perf_counter(), postgres_cpu_seconds(pg)
    await asyncio.gather(*(writer() for _ in range(writers)))
    elapsed, cpu = time.perf_counter() - started, postgres_cpu_seconds(pg) - cpu
    wal = await _wal_bytes(url) - wal
    stored = await count_rows(url, "events")
    per_event = 1 / max(written, 1)
    return AloneResult(written / elapsed, written, stored, cpu * 1e6 * per_event, wal * per_event)


async def _wal_bytes(url: str) -> float:
    conn = await asyncpg.connect(url)
    try:
        return float(await conn.fetchval("SELECT wal_bytes FROM pg_stat_wal"))
    finally:
        await conn.close()


async def profile_parts(
    pg: EmbeddedPostgres, url: str, templates: list[Template], duration: float, writers: int
) -> list[tuple[str, AloneResult]]:
    """PostgreSQL alone with the full schema, then without each secondary index of
    ``events`` and ``event_keys`` in turn (restored after), then without the rollup trigger:
    what each part of the write path costs (WAL per event is exact; events/s and CPU are
    as noisy as the machine)."""
    conn = await asyncpg.connect(url)
    try:
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
            "('events', 'event_keys') AND indexname NOT LIKE '%pkey' ORDER BY indexname"
        )
    finally:
        await conn.close()
    parts: list[tuple[str, str | None, str | None]] = [("full schema", None, None)]
    for row in indexes:
        # pg_indexes shows a partitioned index as ON ONLY: recreate it on every partition
        define = str(row["indexdef"]).replace(" ON ONLY ", " ON ")
        parts.append((f"without {row['indexname']}", f"DROP INDEX {row['indexname']}", define))
    parts.append(
        (
            "without the rollup trigger",
            "ALTER TABLE events DISABLE TRIGGER hookline_rollups",
            "ALTER TABLE events ENABLE TRIGGER hookline_rollups",
        )
    )
    results = []
    for name, change, undo in parts:
        conn = await asyncpg.connect(url)
        try:
            if change:
                await conn.execute(change)
            await conn.execute("TRUNCATE events, event_keys, stats_pending; CHECKPOINT")
            results.append((name, await postgres_alone(pg, url, templates, duration, writers)))
            if undo:
                await conn.execute(undo)
        finally:
            await conn.close()
    return results


# -- Hookline --------------------------------------------------------------------------------


@contextmanager
def serving(cmd: list[str], env: dict[str, str], health: str) -> Iterator[subprocess.Popen[bytes]]:
    """A process started with ``cmd``, answering ``health``; stopped (SIGINT) on exit."""
    process = start(cmd, env)
    try:
        wait_http(health, process)
        yield process
    finally:
        stop(process)


def serve_cmd(port: int) -> list[str]:
    return [PYTHON, "-m", "gateway.cli", "serve", "--port", str(port)]


def acknowledged(result: dict[str, Any], batch: int) -> int:
    """Events in the 2xx answers wrk counted (its status errors are the non-2xx/3xx ones)."""
    return int(result["requests"] - result["errors_status"]) * batch


def hookline_batches(
    work: Path, db_url: str, spec: SourceSpec, requests: Path, args: argparse.Namespace
) -> HooklineResult:
    """Hookline fed ``requests`` (a warm-up from ``requests``/warm, then the run from
    ``requests``/run: wrk replays each from its start, so the two must not share events)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/sendgrid/main"
    config = hookline_config(work, db_url, [spec])
    health = f"http://127.0.0.1:{port}/healthz"
    with serving(serve_cmd(port), bench_env({"HOOKLINE_CONFIG": str(config)}), health):
        warm = run_wrk(url, requests / "warm", 2, args.connections)
        run = run_wrk(url, requests / "run", args.duration, args.connections)
    # stopped: whatever was acknowledged has been committed (or spooled and drained on exit)
    stored = asyncio.run(count_rows(db_url, "events"))
    return HooklineResult(
        events_per_s=run["rps"] * args.batch,
        acknowledged=acknowledged(warm, args.batch) + acknowledged(run, args.batch),
        stored=stored,
        wraps=int(warm["wraps"]) + int(run["wraps"]),
        errors=sum(int(run[k]) for k in ("errors_status", "errors_connect", "errors_timeout")),
        p99_ms=run["p99_us"] / 1000,
    )


def loss_line(name: str, acked: int, stored: int) -> str:
    verdict = "OK" if stored >= acked else f"LOST {acked - stored}"
    return f"{name}: {acked:,} acknowledged, {stored:,} stored: {verdict}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per case")
    parser.add_argument("--batch", type=int, default=100, help="events per batch")
    parser.add_argument("--writers", type=int, default=4, help="PostgreSQL-alone connections")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--skip-hookline", action="store_true", help="PostgreSQL alone only")
    parser.add_argument(
        "--before",
        type=int,
        default=0,
        metavar="VERSION",
        help="also run PostgreSQL alone on the schema without migrations >= VERSION, "
        "alternating with the current schema (a same-run before/after)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="PostgreSQL-alone runs per schema")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only PostgreSQL alone, without each index and the trigger in turn (WAL per event)",
    )
    args = parser.parse_args()
    if not args.skip_hookline and shutil.which("wrk") is None:
        print("wrk is required: apt-get install wrk", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="hookline-batch-bench-"))
    os.chmod(work, 0o755)
    pg = EmbeddedPostgres(work / "pg", durable=True)
    admin_url = pg.start()
    spec, material = make_source("sendgrid")
    try:
        asyncio.run(build_template(admin_url))
        asyncio.run(_partitions(with_db(admin_url, TEMPLATE_DB)))
        scratch = asyncio.run(fresh_copy(admin_url, "bench_scratch"))
        templates = asyncio.run(build_templates(scratch, spec, args.batch))
        if args.profile:
            db_url = asyncio.run(fresh_copy(admin_url, "bench_alone"))
            parts = asyncio.run(profile_parts(pg, db_url, templates, args.duration, args.writers))
            print(f"\n{'PostgreSQL alone':<44}{'events/s':>10}{'CPU us/ev':>11}{'WAL B/ev':>10}")
            for name, r in parts:
                print(
                    f"{name:<44}{r.events_per_s:>10,.0f}{r.cpu_us_per_event:>11.1f}"
                    f"{r.wal_bytes_per_event:>10.0f}"
                )
            return 0
        schemas: dict[str, Callable[[], Coroutine[Any, Any, str]]] = {
            "current": lambda: fresh_copy(admin_url, "bench_alone")
        }
        if args.before:
            schemas[f"before {args.before:04d}"] = lambda: create_database_before(
                admin_url, "bench_before", args.before
            )
        runs: dict[str, list[AloneResult]] = {name: [] for name in schemas}
        for _ in range(args.repeat):
            for name, fresh in schemas.items():
                print(f"PostgreSQL alone ({name} schema): {args.writers} writers ...", flush=True)
                url = asyncio.run(fresh())
                result = asyncio.run(
                    postgres_alone(pg, url, templates, args.duration, args.writers)
                )
                runs[name].append(result)
        alone = runs["current"][-1]
        hook: HooklineResult | None = None
        if not args.skip_hookline:
            count = 700 * args.duration + 2000
            print(f"signing {count} requests of {args.batch} events ...", flush=True)
            write_replay_set(
                work / "batch" / "warm", spec, material, count=1000, batch=args.batch, seed=10**7
            )
            write_replay_set(work / "batch" / "run", spec, material, count=count, batch=args.batch)
            db_url = asyncio.run(fresh_copy(admin_url, "bench_case"))
            print(
                f"Hookline: {args.batch}-event SendGrid batches, {args.duration}s ...", flush=True
            )
            hook = hookline_batches(work, db_url, spec, work / "batch", args)
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    print()
    ok = True
    for name, results in runs.items():
        for r in results:
            print(
                f"PostgreSQL alone, {name} schema, {args.batch}-event batches, {args.writers} "
                f"writers: {r.events_per_s:,.0f} events/s, PostgreSQL CPU "
                f"{r.cpu_us_per_event:.1f} us/event, WAL {r.wal_bytes_per_event:.0f} B/event"
            )
            print(loss_line("  loss check", r.written, r.stored))
            ok = ok and r.stored >= r.written
    if len(runs) > 1:
        medians = {n: statistics.median(r.events_per_s for r in rs) for n, rs in runs.items()}
        cpus = {n: statistics.median(r.cpu_us_per_event for r in rs) for n, rs in runs.items()}
        name = next(n for n in runs if n != "current")
        print(
            f"current / {name}: {medians['current'] / medians[name]:.2f}x events/s, "
            f"{cpus['current'] / cpus[name]:.2f}x PostgreSQL CPU per event (medians)"
        )
    if len(runs["current"]) > 1:
        alone = sorted(runs["current"], key=lambda r: r.events_per_s)[len(runs["current"]) // 2]
    if hook is not None:
        print(
            f"Hookline, {args.batch}-event SendGrid batches, {args.connections} connections: "
            f"{hook.events_per_s:,.0f} events/s (p99 {hook.p99_ms:.1f} ms, {hook.errors} errors), "
            f"{hook.events_per_s / alone.events_per_s:.2f}x PostgreSQL alone"
        )
        print(loss_line("  loss check", hook.acknowledged, hook.stored))
        if hook.wraps:
            print(f"  replay wrapped {hook.wraps} times: duplicates were sent (raise the count)")
        ok = ok and hook.stored >= hook.acknowledged
    return 0 if ok else 1


async def _partitions(url: str) -> None:
    pool = await create_pool(url, min_size=1, max_size=1)
    try:
        await EventStore(pool).ensure_partitions()
    finally:
        await pool.close()


if __name__ == "__main__":
    sys.exit(main())
