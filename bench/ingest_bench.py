"""Ingest benchmark: Hookline against fair baselines, in one invocation, one process each.

    .venv/bin/python bench/ingest_bench.py [--duration 10] [--rounds 3] [--connections 64]
        [--schemes sendgrid,ses,mailgun,postmark] [--kinds floor,naive,hookline]
        [--batch 100] [--peers] [--storage-alone]

For every signing scheme that costs CPU (bench/traffic.py: ECDSA = SendGrid, RSA = SES via
SNS, HMAC = Mailgun, basic auth = Postmark), each under uvicorn (uvloop + httptools) in its
own single process, driven by wrk replaying pre-signed single-event requests whose events
are all unique (bench/wrk_replay.lua):

* the **floor**: Litestar + the provider's own verification, storing nothing;
* **naive with signature**: the same + one INSERT per request through an asyncpg pool;
* **Hookline as shipped**: verification, parsing, metrics, JSON logs (to /dev/null), tracing
  (default sampler, no exporter), group commit into a durable PostgreSQL (fsync and
  synchronous_commit on), outbox workers in the same process.

``--peers`` (``make bench-peers``, needs the ``bench`` dependency group) adds the peer a
Python team would deploy instead: Django + django-anymail's Postmark tracking view and a
``get_or_create`` receiver under gunicorn with one sync worker (bench/apps/django_peer).

Every case runs against a fresh database; CPU per request is read from /proc for the
server's whole process tree (far steadier than req/s on a shared machine). With several
rounds, each figure is the median and the ratios' spread is printed. Every storing case is
checked for loss: the rows in PostgreSQL must cover every acknowledged event. Needs `wrk`
(Debian package). Only 127.0.0.1 is ever contacted.

The plumbing here (the template database and its fresh copies, wrk, Hookline's config, the
servers' environment) is shared by bench/batch_bench.py, bench/scale_bench.py and
bench/profile_ingest.py; the signed traffic comes from bench/traffic.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.proc_stats import cpu_seconds  # noqa: E402
from bench.traffic import (  # noqa: E402
    SCHEMES,
    make_source,
    sendgrid,
    source_toml,
    spec_to_json,
    write_replay_set,
)
from gateway.storage.embedded import EmbeddedPostgres  # noqa: E402
from gateway.storage.migrate import apply_migrations  # noqa: E402
from gateway.storage.pool import create_pool  # noqa: E402
from gateway.storage.store import EventStore  # noqa: E402
from handlers.base import WebhookRequest  # noqa: E402

PYTHON = sys.executable
#: request rates no case here reaches on a 2-core machine: files are sized from them, so
#: that no replay wraps around (a wrap would send duplicates)
MAX_RATE = {"sendgrid": 7000, "ses": 4000, "mailgun": 9000, "postmark": 9000}
WARM_UP_SECONDS = 2
TEMPLATE_DB = "hookline_template"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} never answered")


def run_wrk(url: str, requests_dir: Path, duration: int, connections: int) -> dict[str, Any]:
    result = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "wrk_replay.lua"),
            url,
            "--",
            str(requests_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
            data["acked"] = data["requests"] - data["errors_status"]
            return data
    raise RuntimeError(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (gunicorn's workers, the gateway's helpers)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                continue
    return pids


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def bench_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without OTEL_* / HOOKLINE_* (the bench's configuration decides),
    with the repository importable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HOOKLINE_"))}
    return env | {"PYTHONPATH": str(ROOT)} | (extra or {})


def with_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def build_template(admin_url: str) -> None:
    """A migrated database that every Hookline case copies (CREATE DATABASE ... TEMPLATE)."""
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    finally:
        await admin.close()
    conn = await asyncpg.connect(with_db(admin_url, TEMPLATE_DB))
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()


async def fresh_database(admin_url: str, name: str, template: str | None = None) -> str:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(
            f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else "")
        )
    finally:
        await admin.close()
    return with_db(admin_url, name)


async def count_rows(url: str, table: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def storage_alone(url: str, spec: Any, duration: int, batch: int = 2000) -> float:
    """Events/s that ``EventStore.write_events`` alone gets into PostgreSQL (same schema,
    indexes and rollup trigger; two writers, like the batcher's two flushes in flight; events
    parsed beforehand): the ceiling for the gateway's stored events/s on this machine."""
    received = datetime.now(UTC)
    pool = await create_pool(url, min_size=2, max_size=2, command_timeout=600)
    store = EventStore(pool)
    await store.ensure_partitions(received.date())
    request = WebhookRequest(
        "POST", "", {}, SCHEMES["sendgrid"].samples.example_body(batch, seed=10**6)
    )
    template = sendgrid.ADAPTER.parse(request, spec, received).events
    counter = iter(range(10**9))

    def next_batch() -> list[Any]:  # fresh dedup keys: ~1 µs per event
        n = next(counter)
        return [msgspec.structs.replace(e, dedup_key=f"{e.dedup_key}:{n}") for e in template]

    written = 0
    deadline = time.monotonic() + duration

    async def writer() -> None:
        nonlocal written
        while time.monotonic() < deadline:
            events = next_batch()
            await store.write_events(events)
            written += len(events)

    started = time.perf_counter()
    try:
        await asyncio.gather(writer(), writer())
    finally:
        await pool.close()
    return written / (time.perf_counter() - started)


def uvicorn_cmd(app: str, port: int) -> list[str]:
    return [
        PYTHON,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]


# -- the traffic ---------------------------------------------------------------------------


def sign_traffic(
    work: Path, sources: dict[str, tuple[Any, Any]], duration: int, batch: int
) -> None:
    """Per provider (``sources``: its spec and signing material), a warm-up set and a
    measured set of single-event requests (and the SendGrid batches), one file per wrk
    thread (bench/traffic.py)."""
    started = time.monotonic()
    for provider, (spec, material) in sources.items():
        sets = [("warm", MAX_RATE[provider] * WARM_UP_SECONDS + 2000, 1, 10**7)]
        sets.append(("run", MAX_RATE[provider] * duration + 2000, 1, 0))
        if provider == "sendgrid" and batch > 1:
            batches = 400 * duration + 500  # well above what 100-event batches reach
            sets += [
                ("batch-warm", 1000, batch, 3 * 10**7),
                ("batch-run", batches, batch, 2 * 10**7),
            ]
        for kind, count, size, seed in sets:
            write_replay_set(
                work / f"{provider}-{kind}", spec, material, count=count, batch=size, seed=seed
            )
    print(f"signed the traffic in {time.monotonic() - started:.0f}s", flush=True)


# -- the cases -----------------------------------------------------------------------------


@dataclass
class Target:
    """One server under test: how to start it on a port with a database URL, and which
    table holds what it acknowledged (None: it stores nothing)."""

    kind: str  # floor | naive | hookline | batch | peer
    provider: str
    label: str
    command: Callable[[int], list[str]]
    environment: Callable[[str], dict[str, str]]
    table: str | None = None
    template: str | None = None
    traffic: str = "run"  # which signed set (bench/traffic.py) drives it
    events_per_request: int = 1
    prepare: Callable[[dict[str, str]], None] | None = None


@dataclass
class Measurement:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float
    pg_cpu_ms: float
    acked_events: int
    stored: int | None
    wraps: int
    rss_mb: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def lost(self) -> int | None:
        return None if self.stored is None else max(0, self.acked_events - self.stored)


def postgres_pid(pg: EmbeddedPostgres) -> int:
    return int((pg.cluster_dir / "postmaster.pid").read_text().split()[0])


def measure(
    target: Target, work: Path, admin_url: str, duration: int, connections: int, pg_pid: int
) -> Measurement:
    url = admin_url
    if target.table is not None:
        url = asyncio.run(fresh_database(admin_url, "bench_case", target.template))
    env = bench_env({"BENCH_DATABASE_URL": url, **target.environment(url)})
    if target.prepare is not None:
        target.prepare(env)
    port = free_port()
    process = start(target.command(port), env)
    base = f"http://127.0.0.1:{port}"
    path = f"/webhooks/{target.provider}/main"
    try:
        wait_http(f"{base}/healthz", process)
        warm = run_wrk(
            base + path,
            work / f"{target.provider}-{target.traffic.replace('run', 'warm')}",
            WARM_UP_SECONDS,
            connections,
        )
        pids = process_tree(process.pid)
        cpu_before = cpu_seconds(pids)
        pg_pids = process_tree(pg_pid)
        pg_before = cpu_seconds(pg_pids)
        run = run_wrk(
            base + path, work / f"{target.provider}-{target.traffic}", duration, connections
        )
        cpu = cpu_seconds(pids) - cpu_before
        # backends that started during the run count whole (they are the pool's: few)
        pg_cpu = cpu_seconds(set(process_tree(pg_pid)) | set(pg_pids)) - pg_before
        rss = sum(rss_mb(pid) for pid in pids if Path(f"/proc/{pid}").exists())
    finally:
        stop(process)
    stored = asyncio.run(count_rows(url, target.table)) if target.table else None
    return Measurement(
        rps=run["rps"],
        p50_ms=run["p50_us"] / 1000,
        p99_ms=run["p99_us"] / 1000,
        errors=run["errors_status"] + run["errors_connect"] + run["errors_timeout"],
        cpu_ms=cpu * 1000 / max(1, run["requests"]),
        pg_cpu_ms=pg_cpu * 1000 / max(1, run["requests"]),
        acked_events=(warm["acked"] + run["acked"]) * target.events_per_request,
        stored=stored,
        wraps=warm["wraps"] + run["wraps"],
        rss_mb=rss,
    )


def hookline_config(work: Path, url: str, specs: Iterable[Any], name: str = "hookline") -> Path:
    """``work/<name>.toml``: Hookline as shipped on the database at ``url`` with the bench's
    sources, JSON logs, and its own data directory (spool) ``work/<name>-data``, like one
    volume per pod."""
    config = work / f"{name}.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\npool_max_size = 10\n'
        f'[storage]\ndata_dir = "{work / name}-data"\n'
        '[logging]\nformat = "json"\n' + "".join(source_toml(spec) for spec in specs)
    )
    return config


def hookline_target(
    work: Path, specs: dict[str, Any], kind: str = "hookline", batch: int = 1
) -> Target:
    def environment(url: str) -> dict[str, str]:
        return {"HOOKLINE_CONFIG": str(hookline_config(work, url, specs.values()))}

    return Target(
        kind=kind,
        provider="sendgrid" if kind == "batch" else "",
        label="",
        command=lambda port: [PYTHON, "-m", "gateway.cli", "serve", "--port", str(port)],
        environment=environment,
        table="events",
        template=TEMPLATE_DB,
        traffic="batch-run" if kind == "batch" else "run",
        events_per_request=batch,
    )


def targets_for(provider: str, spec: Any, work: Path, specs: dict[str, Any]) -> list[Target]:
    source = {"BENCH_SOURCE": spec_to_json(spec)}
    receiver = lambda port: uvicorn_cmd("bench.apps.receiver:app", port)  # noqa: E731
    hookline = hookline_target(work, specs)
    hookline.provider, hookline.label = provider, "Hookline"
    return [
        Target(
            "floor",
            provider,
            "floor (verify only)",
            receiver,
            lambda _: {**source, "BENCH_STORE": "none"},
        ),
        Target(
            "naive",
            provider,
            "naive with signature",
            receiver,
            lambda _: {**source, "BENCH_STORE": "insert"},
            table="naive_events",
        ),
        hookline,
    ]


def peer_target(spec: Any) -> Target:
    """Django + django-anymail (Postmark) under gunicorn, one sync worker."""

    def environment(_: str) -> dict[str, str]:
        return {
            "DJANGO_SETTINGS_MODULE": "bench.apps.django_peer.settings",
            "BENCH_BASIC_AUTH": spec.basic_auth or "",
        }

    def prepare(env: dict[str, str]) -> None:
        subprocess.run(
            [PYTHON, "-m", "django", "migrate", "--run-syncdb", "-v", "0"],
            env=env,
            cwd=ROOT,
            check=True,
        )

    return Target(
        "peer",
        "postmark",
        "Django + anymail, gunicorn 1 worker",
        lambda port: [
            PYTHON,
            "-m",
            "gunicorn",
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench.apps.django_peer.wsgi:application",
        ],
        environment,
        table="peer_events",
        prepare=prepare,
    )


# -- the report ----------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    return f" ({min(values):.2f}-{max(values):.2f} over {len(values)} rounds)"


Results = dict[tuple[str, str], list[Measurement]]


def ratios(
    results: Results, provider: str, numerator: str, denominator: str, attribute: str
) -> list[float]:
    """Per round, ``numerator``'s figure over ``denominator``'s (measured in the same round)."""
    pairs = zip(
        results.get((provider, numerator), []),
        results.get((provider, denominator), []),
        strict=False,
    )
    return [
        getattr(a, attribute) / getattr(b, attribute) for a, b in pairs if getattr(b, attribute)
    ]


def report(results: Results, providers: list[str], batch: int) -> bool:
    """Print the tables, the ratios, the loss check and the targets; True when nothing
    acknowledged is missing."""
    print()
    print(
        f"{'scheme':<16}{'case':<38}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}"
        f"{'CPU ms/req':>11}{'PG ms/req':>10}{'x floor':>9}{'x naive':>9}"
    )
    labels = {
        "floor": "floor (verify only)",
        "naive": "naive with signature",
        "hookline": "Hookline, 1 event/request",
        "peer": "Django + anymail (gunicorn, 1 worker)",
        "batch": f"Hookline, {batch} events/request",
    }
    peer_only = ("postmark", "peer") in results and "postmark" not in providers
    for provider in providers + (["postmark"] if peer_only else []):
        for kind in ("floor", "naive", "hookline", "peer", "batch"):
            runs = results.get((provider, kind))
            if not runs:
                continue
            rps = median([m.rps for m in runs])
            floor = median([m.rps for m in results.get((provider, "floor"), [])])
            naive = median([m.rps for m in results.get((provider, "naive"), [])])
            print(
                f"{SCHEMES[provider].name:<16}{labels[kind]:<38}{rps:>8,.0f}"
                f"{median([m.p50_ms for m in runs]):>8.1f}{median([m.p99_ms for m in runs]):>8.1f}"
                f"{sum(m.errors for m in runs):>7}{median([m.cpu_ms for m in runs]):>11.3f}"
                f"{median([m.pg_cpu_ms for m in runs]):>10.3f}"
                f"{rps / floor:>9.2f}{rps / naive:>9.2f}"
            )
    print()
    print("Ratios, per round in the same run (median, and the spread over rounds):")
    for provider in providers:
        for label, num, den, attr in (
            ("Hookline / floor, req/s", "hookline", "floor", "rps"),
            ("Hookline / floor, CPU per request", "hookline", "floor", "cpu_ms"),
            ("Hookline / naive with signature, req/s", "hookline", "naive", "rps"),
        ):
            values = ratios(results, provider, num, den, attr)
            if values:
                print(f"  {provider:<9}{label:<42}{median(values):>6.2f}{spread(values)}")
    peer = ratios(results, "postmark", "hookline", "peer", "rps")
    if peer:
        print(
            f"  {'postmark':<9}{'Hookline / Django peer (1 worker), req/s':<42}{median(peer):>6.2f}{spread(peer)}"
        )
    print()
    print("Loss check (rows in PostgreSQL after the server stopped vs events acknowledged):")
    whole = True
    for (provider, kind), runs in sorted(results.items()):
        for number, m in enumerate(runs, 1):
            if m.stored is None:
                continue
            verdict = "ok" if m.lost == 0 else f"MISSING {m.lost}"
            whole = whole and m.lost == 0
            wraps = f", {m.wraps} replay wrap-arounds (duplicates sent)" if m.wraps else ""
            print(
                f"  {provider:<9}{kind:<9}round {number}: acknowledged {m.acked_events:,}, stored {m.stored:,}: {verdict}{wraps}"
            )
    sendgrid_hook = results.get(("sendgrid", "hookline"))
    if sendgrid_hook:
        print()
        print("Targets (issue #21), SendGrid single events:")
        checks = [
            (
                "req/s >= 0.80x the floor",
                median(ratios(results, "sendgrid", "hookline", "floor", "rps")),
                0.80,
                True,
            ),
            (
                "CPU per request <= 1.25x the floor",
                median(ratios(results, "sendgrid", "hookline", "floor", "cpu_ms")),
                1.25,
                False,
            ),
            (
                "req/s >= 1.5x naive with signature",
                median(ratios(results, "sendgrid", "hookline", "naive", "rps")),
                1.5,
                True,
            ),
            ("p99 <= 25 ms", median([m.p99_ms for m in sendgrid_hook]), 25.0, False),
        ]
        if peer:
            checks.append(("Postmark req/s >= 10x the Django peer", median(peer), 10.0, True))
        for name, value, bound, at_least in checks:
            met = value >= bound if at_least else value <= bound
            print(f"  {name:<40}{value:>8.2f}  {'met' if met else 'NOT met'}")
    return whole


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per case")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every case (median, spread)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--schemes", default=",".join(SCHEMES), help="providers, comma-separated")
    parser.add_argument("--kinds", default="floor,naive,hookline", help="cases per scheme")
    parser.add_argument(
        "--batch", type=int, default=100, help="events per SendGrid batch (0: skip)"
    )
    parser.add_argument("--peers", action="store_true", help="add the Django peer (Postmark)")
    parser.add_argument("--storage-alone", action="store_true", help="add PostgreSQL alone")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install wrk", file=sys.stderr)
        return 2
    providers = [p for p in args.schemes.split(",") if p]
    kinds = args.kinds.split(",")
    traffic_providers = sorted(set(providers) | ({"postmark"} if args.peers else set()))

    work = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    os.chmod(work, 0o755)
    pg = EmbeddedPostgres(work / "pg", durable=True)
    admin_url = pg.start()
    results: Results = {}
    storage_rate = None
    try:
        asyncio.run(build_template(admin_url))
        sources = {provider: make_source(provider) for provider in traffic_providers}
        specs = {provider: spec for provider, (spec, _) in sources.items()}
        sign_traffic(work, sources, args.duration, args.batch if "sendgrid" in providers else 0)
        plan: list[Target] = []
        for provider in providers:
            plan += [
                t for t in targets_for(provider, specs[provider], work, specs) if t.kind in kinds
            ]
        if args.peers:
            hookline = hookline_target(work, specs)
            hookline.provider = "postmark"
            plan += [peer_target(specs["postmark"])] + (
                [] if "postmark" in providers else [hookline]
            )
        if args.batch > 1 and "sendgrid" in providers:
            plan.append(hookline_target(work, specs, "batch", args.batch))
        for round_number in range(1, args.rounds + 1):
            for target in plan:
                print(f"round {round_number}: {target.provider} {target.kind}", flush=True)
                m = measure(
                    target, work, admin_url, args.duration, args.connections, postgres_pid(pg)
                )
                results.setdefault((target.provider, target.kind), []).append(m)
                print(
                    f"  {m.rps:,.0f} req/s, p99 {m.p99_ms:.1f} ms, {m.cpu_ms:.3f} ms CPU/req "
                    f"(PostgreSQL {m.pg_cpu_ms:.3f})",
                    flush=True,
                )
        if args.storage_alone:
            url = asyncio.run(fresh_database(admin_url, "bench_case", TEMPLATE_DB))
            storage_rate = asyncio.run(
                storage_alone(
                    url, specs.get("sendgrid") or make_source("sendgrid")[0], args.duration
                )
            )
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    whole = report(results, providers, args.batch)
    batch = results.get(("sendgrid", "batch"))
    if batch:
        print(
            f"\nHookline, {args.batch}-event batches: {median([m.rps for m in batch]) * args.batch:,.0f} events/s"
        )
    if storage_rate:
        print(
            f"PostgreSQL alone (EventStore.write_events, batches of 2000, 2 writers): {storage_rate:,.0f} events/s"
        )
    print(f"\n{'nothing acknowledged is missing' if whole else 'ACKNOWLEDGED EVENTS ARE MISSING'}")
    return 0 if whole else 1


if __name__ == "__main__":
    sys.exit(main())
