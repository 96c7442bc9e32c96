"""Ingest benchmark: the bare-ASGI ceiling, a naive per-request-INSERT handler and Hookline,
measured in one invocation on this machine, with ratios.

    .venv/bin/python bench/ingest_bench.py [--duration 15] [--connections 64] [--soak 0]

Every case runs under uvicorn (uvloop + httptools) in its own process and is driven by wrk
replaying pre-signed SendGrid requests whose events are all unique (bench/wrk_replay.lua).
Hookline runs as shipped: signature verification, metrics, JSON logs (to /dev/null) and
tracing (no exporter) enabled, group commit into a durable PostgreSQL (fsync on,
synchronous_commit on). Needs `wrk` (Debian package). Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.proc_stats import cpu_seconds  # noqa: E402
from gateway.storage.embedded import EmbeddedPostgres  # noqa: E402
from gateway.storage.pool import create_pool  # noqa: E402
from gateway.storage.store import EventStore  # noqa: E402
from handlers import sendgrid  # noqa: E402
from handlers.base import WebhookRequest  # noqa: E402
from hookline_testing import samples_for  # noqa: E402

PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_requests(
    directory: Path, key: ec.EllipticCurvePrivateKey, count: int, batch: int, threads: int, tag: str
) -> None:
    """Pre-sign ``count`` requests of ``batch`` unique events, split over per-thread files."""
    directory.mkdir(parents=True, exist_ok=True)
    files = [open(directory / f"requests-{i}.txt", "w") for i in range(threads)]  # noqa: SIM115
    timestamp = str(int(datetime.now(UTC).timestamp()))
    try:
        for n in range(count):
            body = samples_for("sendgrid").example_body(batch, seed=hash((tag, n)) & 0x7FFFFFFF)
            body = body.rstrip(b"\r\n")
            signature = key.sign(timestamp.encode() + body + b"\r\n", ec.ECDSA(hashes.SHA256()))
            line = f"{base64.b64encode(signature).decode()}\t{timestamp}\t{body.decode()}\n"
            files[n % threads].write(line)
    finally:
        for handle in files:
            handle.close()


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
            return data
    raise RuntimeError(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")


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


async def count_rows(url: str, table: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def reset_database(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS naive_events; "
            "DO $$ BEGIN IF to_regclass('events') IS NOT NULL THEN "
            "TRUNCATE events, event_keys; END IF; END $$;"
        )
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
        "POST", "", {}, samples_for("sendgrid").example_body(batch, seed=10**6)
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per case")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batch", type=int, default=100, help="events per batch request")
    parser.add_argument("--soak", type=int, default=0, help="seconds of memory soak (0: skip)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install wrk", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    os.chmod(work, 0o755)
    pg = EmbeddedPostgres(work / "pg", durable=True)
    db_url = pg.start()
    spec, key = samples_for("sendgrid").make_source("main")
    results: dict[str, dict[str, Any]] = {}
    env = {**os.environ, "BENCH_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    try:
        single_count = 9000 * args.duration + 20000
        print(f"signing {single_count} single-event requests ...", flush=True)
        write_requests(work / "single", key, single_count, 1, 2, "single")
        batch_count = 700 * args.duration + 2000
        print(f"signing {batch_count} requests of {args.batch} events ...", flush=True)
        write_requests(work / "batch", key, batch_count, args.batch, 2, "batch")

        def case(
            name: str,
            cmd_for: Callable[[int], list[str]],
            path: str,
            requests: str,
            extra_env: dict[str, str],
        ) -> None:
            port = free_port()
            process = start(cmd_for(port), {**env, **extra_env})
            try:
                wait_http(f"http://127.0.0.1:{port}/healthz", process)
                # warm up, then measure
                run_wrk(f"http://127.0.0.1:{port}{path}", work / requests, 2, args.connections)
                rss_before = rss_mb(process.pid)
                cpu_before = cpu_seconds([process.pid])
                results[name] = run_wrk(
                    f"http://127.0.0.1:{port}{path}",
                    work / requests,
                    args.duration,
                    args.connections,
                )
                results[name]["cpu_ms"] = (
                    (cpu_seconds([process.pid]) - cpu_before) * 1000 / results[name]["requests"]
                )
                results[name]["rss_mb"] = rss_mb(process.pid)
                results[name]["rss_before_mb"] = rss_before
            finally:
                stop(process)

        path = "/webhooks/sendgrid/main"
        print("case: bare ASGI ceiling", flush=True)
        case("bare", lambda port: uvicorn_cmd("bench.apps.bare:app", port), path, "single", {})
        print("case: Litestar + signature check only (a floor)", flush=True)
        case(
            "verify",
            lambda port: uvicorn_cmd("bench.apps.verify_only:app", port),
            path,
            "single",
            {"BENCH_SIGNING_KEY": spec.signing_key or ""},
        )
        print("case: naive per-request INSERT", flush=True)
        asyncio.run(reset_database(db_url))
        case("naive", lambda port: uvicorn_cmd("bench.apps.naive:app", port), path, "single", {})
        naive_rows = asyncio.run(count_rows(db_url, "naive_events"))

        config = work / "hookline.toml"
        config.write_text(
            f'[database]\nurl = "{db_url}"\npool_max_size = 10\n'
            f'[storage]\ndata_dir = "{work / "data"}"\n'
            '[logging]\nformat = "json"\n'
            f'[[sources]]\nprovider = "sendgrid"\nname = "main"\nsigning_key = "{spec.signing_key}"\n'
        )
        hookline_env = {"HOOKLINE_CONFIG": str(config)}

        def hookline_cmd(port: int) -> list[str]:
            return [PYTHON, "-m", "gateway.cli", "serve", "--port", str(port)]

        asyncio.run(reset_database(db_url))
        print("case: Hookline, single-event requests", flush=True)
        case("hookline", hookline_cmd, path, "single", hookline_env)
        stored_single = asyncio.run(count_rows(db_url, "events"))
        asyncio.run(reset_database(db_url))
        print(f"case: Hookline, {args.batch}-event batches", flush=True)
        case("hookline_batch", hookline_cmd, path, "batch", hookline_env)
        stored_batch = asyncio.run(count_rows(db_url, "events"))
        asyncio.run(reset_database(db_url))
        print("case: PostgreSQL alone (EventStore.write_events, no HTTP)", flush=True)
        storage_rate = asyncio.run(storage_alone(db_url, spec, args.duration))

        soak: tuple[float, float] | None = None
        if args.soak:
            print(f"soak: Hookline for {args.soak}s, sampling RSS", flush=True)
            asyncio.run(reset_database(db_url))
            port = free_port()
            process = start(
                [PYTHON, "-m", "gateway.cli", "serve", "--port", str(port)], {**env, **hookline_env}
            )
            try:
                wait_http(f"http://127.0.0.1:{port}/healthz", process)
                run_wrk(f"http://127.0.0.1:{port}{path}", work / "single", 10, args.connections)
                first = rss_mb(process.pid)
                run_wrk(
                    f"http://127.0.0.1:{port}{path}", work / "single", args.soak, args.connections
                )
                soak = (first, rss_mb(process.pid))
            finally:
                stop(process)
    finally:
        pg.stop()

    bare, verify, naive, hook, batch = (
        results[k] for k in ("bare", "verify", "naive", "hookline", "hookline_batch")
    )
    print()
    print(
        f"{'case':<34}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'x ceiling':>11}"
        f"{'x naive':>9}{'CPU ms/req':>12}"
    )
    for label, data in (
        ("bare ASGI (ceiling)", bare),
        ("Litestar + signature only (floor)", verify),
        ("naive per-request INSERT", naive),
        ("Hookline, 1 event/request", hook),
        (f"Hookline, {args.batch} events/request", batch),
    ):
        errors = data["errors_status"] + data["errors_connect"] + data["errors_timeout"]
        print(
            f"{label:<34}{data['rps']:>10.0f}{data['p50_us'] / 1000:>9.1f}{data['p99_us'] / 1000:>9.1f}"
            f"{errors:>8}{data['rps'] / bare['rps']:>11.2f}{data['rps'] / naive['rps']:>9.2f}"
            f"{data['cpu_ms']:>12.3f}"
        )
    print()
    print(f"naive rows stored: {naive_rows}; Hookline single-event rows stored: {stored_single}")
    print(
        f"Hookline, {args.batch}-event batches: {batch['rps'] * args.batch:,.0f} events/s "
        f"acknowledged (= committed); {stored_batch} rows in PostgreSQL after warm-up + run; "
        f"replay wrap-arounds: {batch['wraps']} (0 means every event was unique)"
    )
    print(
        f"PostgreSQL alone (EventStore.write_events, batches of 2000, 2 writers, events "
        f"parsed beforehand): {storage_rate:,.0f} events/s; Hookline "
        f"stored {batch['rps'] * args.batch / storage_rate:.2f}x of that"
    )
    print(
        f"Hookline RSS: {hook['rss_before_mb']:.0f} MB -> {hook['rss_mb']:.0f} MB over the single-event run"
    )
    if soak:
        print(f"soak RSS: {soak[0]:.0f} MB after warm-up -> {soak[1]:.0f} MB after {args.soak}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
