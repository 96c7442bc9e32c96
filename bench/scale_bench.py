"""Scale-out benchmark: one and then two gateway processes against one PostgreSQL, in the
chart's process model, with the CPU each part used and a loss check.

    .venv/bin/python bench/scale_bench.py [--duration 15] [--gateways 1,2] [--batch 1,100]

The chart runs N gateway pods (``hookline serve`` with ``[server] workers = false``) and one
worker pod (``hookline worker``: outbox, retention, rollup compaction, gauges) on one
PostgreSQL (docs/kubernetes.md). This starts the same processes on this machine: a durable
embedded PostgreSQL, one worker, and N gateways, each driven by its own wrk replaying
pre-signed SendGrid requests of unique events (the connections split evenly; a load
balancer would do the same). For each case it prints events/s, the CPU seconds per 1,000
events of the gateways, the worker, PostgreSQL and wrk, and how busy the machine's cores
were (any process): the part that takes most of the busy cores is where the limit is.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.batch_bench import (  # noqa: E402
    acknowledged,
    fresh_copy,
    loss_line,
    postgres_cpu_seconds,
    serve_cmd,
    serving,
)
from bench.ingest_bench import (  # noqa: E402
    bench_env,
    build_template,
    count_rows,
    free_port,
    hookline_config,
    run_wrk,
)
from bench.proc_stats import cpu_seconds  # noqa: E402
from bench.traffic import make_source, write_replay_set  # noqa: E402
from gateway.storage.embedded import EmbeddedPostgres  # noqa: E402
from handlers.base import SourceSpec  # noqa: E402

PYTHON = sys.executable
#: requests signed per gateway and second of the run (above what one process answers)
REQUESTS_PER_SECOND = {1: 6000, 100: 500}
WARM_SECONDS = 2


@dataclass(frozen=True)
class Case:
    gateways: int
    batch: int
    events_per_s: float
    p99_ms: float
    acknowledged: int
    stored: int
    #: CPU seconds per 1,000 events stored, per part
    cpu_per_1k: dict[str, float]
    #: CPU seconds the whole machine spent per wall second (every process, other load
    #: included): 2.0 is both cores of this machine busy
    cores_busy: float
    #: times a wrk thread ran out of signed requests and replayed (duplicates)
    wraps: int


def total_cpu_seconds() -> float:
    """CPU time the whole machine spent (every process, not only ours), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(f) for i, f in enumerate(fields) if i not in (3, 4))  # minus idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def run_case(
    work: Path,
    pg: EmbeddedPostgres,
    admin_url: str,
    source: tuple[SourceSpec, Any],  # the SendGrid source and its signing key
    gateways: int,
    batch: int,
    duration: int,
    connections: int,
) -> Case:
    spec, material = source
    db_url = asyncio.run(fresh_copy(admin_url, "bench_case"))
    # one data directory (spool) per process, like one volume per pod; the worker's last
    config_for = [hookline_config(work, db_url, [spec], f"gateway-{i}") for i in range(gateways)]
    config_for.append(hookline_config(work, db_url, [spec], "worker"))
    per_gateway = connections // gateways
    count = REQUESTS_PER_SECOND[batch] * duration + 1000
    warm_count = REQUESTS_PER_SECOND[batch] * WARM_SECONDS + 500
    dirs = []
    for i in range(gateways):
        # every set its own seeds: the events of all gateways and phases are unique
        directory = work / f"requests-{batch}-{gateways}-{i}"
        seed = 10**8 * i
        write_replay_set(
            directory / "warm", spec, material, count=warm_count, batch=batch, seed=seed + 10**7
        )
        write_replay_set(directory / "run", spec, material, count=count, batch=batch, seed=seed)
        dirs.append(directory)
    with ExitStack() as stack:
        worker_port = free_port()
        worker = stack.enter_context(
            serving(
                [PYTHON, "-m", "gateway.cli", "worker", "--port", str(worker_port)],
                bench_env({"HOOKLINE_CONFIG": str(config_for[-1])}),
                f"http://127.0.0.1:{worker_port}/healthz",
            )
        )
        ports = [free_port() for _ in range(gateways)]
        processes = [
            stack.enter_context(
                serving(
                    serve_cmd(port),
                    bench_env(
                        {"HOOKLINE_CONFIG": str(config_for[i]), "HOOKLINE_SERVER_WORKERS": "false"}
                    ),
                    f"http://127.0.0.1:{port}/healthz",
                )
            )
            for i, port in enumerate(ports)
        ]
        urls = [f"http://127.0.0.1:{port}/webhooks/sendgrid/main" for port in ports]

        def drive(phase: str, seconds: int) -> list[dict[str, Any]]:
            with ThreadPoolExecutor(gateways) as pool:
                return list(
                    pool.map(
                        lambda i: run_wrk(urls[i], dirs[i] / phase, seconds, per_gateway),
                        range(gateways),
                    )
                )

        warm = drive("warm", WARM_SECONDS)
        gateway_pids = [p.pid for p in processes]
        before = (
            cpu_seconds(gateway_pids),
            cpu_seconds([worker.pid]),
            postgres_cpu_seconds(pg),
            os.times().children_user + os.times().children_system,
            total_cpu_seconds(),
        )
        started = time.perf_counter()
        runs = drive("run", duration)
        elapsed = time.perf_counter() - started
        after = (
            cpu_seconds(gateway_pids),
            cpu_seconds([worker.pid]),
            postgres_cpu_seconds(pg),
            os.times().children_user + os.times().children_system,
            total_cpu_seconds(),
        )
    stored = asyncio.run(count_rows(db_url, "events"))
    events = sum(r["requests"] - r["errors_status"] for r in runs) * batch
    parts = ("gateways", "worker", "postgres", "wrk")
    cpu = {part: (after[i] - before[i]) * 1000 / max(events, 1) for i, part in enumerate(parts)}
    return Case(
        gateways=gateways,
        batch=batch,
        events_per_s=events / elapsed,
        p99_ms=max(r["p99_us"] for r in runs) / 1000,
        acknowledged=sum(acknowledged(r, batch) for r in warm + runs),
        stored=stored,
        cpu_per_1k=cpu,
        cores_busy=(after[4] - before[4]) / elapsed,
        wraps=sum(int(r["wraps"]) for r in warm + runs),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per case")
    parser.add_argument("--gateways", default="1,2", help="gateway process counts")
    parser.add_argument("--batch", default="1,100", help="events per request, per case")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections in all")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install wrk", file=sys.stderr)
        return 2
    counts = [int(n) for n in args.gateways.split(",")]
    batches = [int(n) for n in args.batch.split(",")]
    if any(b not in REQUESTS_PER_SECOND for b in batches):
        print(f"--batch takes {sorted(REQUESTS_PER_SECOND)}", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="hookline-scale-bench-"))
    os.chmod(work, 0o755)
    pg = EmbeddedPostgres(work / "pg", durable=True)
    admin_url = pg.start()
    source = make_source("sendgrid")
    cases: list[Case] = []
    try:
        asyncio.run(build_template(admin_url))
        for batch in batches:
            for gateways in counts:
                print(f"case: {gateways} gateway(s), {batch} event(s)/request ...", flush=True)
                cases.append(
                    run_case(
                        work,
                        pg,
                        admin_url,
                        source,
                        gateways,
                        batch,
                        args.duration,
                        args.connections,
                    )
                )
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(
        f"{'gateways':>8}{'events/req':>11}{'events/s':>10}{'x 1 gw':>8}{'p99 ms':>8}"
        f"{'machine busy':>13}   CPU s per 1,000 events: gateways / worker / postgres / wrk"
    )
    ok = True
    for case in cases:
        base = next(c for c in cases if c.batch == case.batch and c.gateways == counts[0])
        cpu = case.cpu_per_1k
        print(
            f"{case.gateways:>8}{case.batch:>11}{case.events_per_s:>10,.0f}"
            f"{case.events_per_s / base.events_per_s:>8.2f}{case.p99_ms:>8.1f}"
            f"{case.cores_busy:>13.2f}   {cpu['gateways']:.3f} / {cpu['worker']:.3f} / "
            f"{cpu['postgres']:.3f} / {cpu['wrk']:.3f}"
        )
        print("  " + loss_line("loss check", case.acknowledged, case.stored))
        if case.wraps:
            print(f"  wrk replayed its requests {case.wraps} times: duplicates were acknowledged")
        ok = ok and case.stored >= case.acknowledged
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
