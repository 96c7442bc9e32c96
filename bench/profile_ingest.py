"""Hookline's own CPU per single-event request, in-process, with a profile of where it goes.

    .venv/bin/python bench/profile_ingest.py [--provider sendgrid] [--requests 20000]
        [--concurrency 64] [--profile 25]

No HTTP server and no sockets to the client: the ASGI app (``gateway.app.create_app``,
configured as ``hookline serve`` is: JSON logs, metrics, tracing with the default
sampler, group commit into a durable embedded PostgreSQL) is called directly with
``--concurrency`` requests in flight, and so is the floor (``bench/apps/receiver.py``: the
same verification, nothing stored). What both would pay to uvicorn (parsing, the two
socket writes) is left out, so the difference is Hookline's own work per request. CPU is
``time.process_time`` (this process only; PostgreSQL's is its own), far steadier than
wall time on a shared machine. ``--profile N`` prints the top N functions by own time
(cProfile timed by process CPU; it inflates small Python calls: read it for shares;
``--sort cumulative`` orders by time including callees, the parts' shares).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest_bench import hookline_config  # noqa: E402
from bench.traffic import make_source, signed_requests, spec_to_json  # noqa: E402
from gateway.storage.embedded import EmbeddedPostgres  # noqa: E402
from gateway.storage.migrate import apply_migrations  # noqa: E402

App = Callable[..., Awaitable[None]]  # an ASGI app: (scope, receive, send)


@asynccontextmanager
async def lifespan(app: App) -> AsyncIterator[None]:
    """The app started and, on exit, shut down: one ASGI ``lifespan`` call (the protocol,
    by hand) that is sent ``startup`` and later ``shutdown``, as a server does."""
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(event: dict[str, Any]) -> None:
        await replies.put(event)

    async def step(message: str) -> None:
        await inbox.put({"type": f"lifespan.{message}"})
        getter = asyncio.ensure_future(replies.get())
        either: set[asyncio.Future[Any]] = {task, getter}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            task.result()  # the app returned or raised before answering
            raise RuntimeError(f"the app ended its lifespan without answering {message}")
        event = getter.result()
        if event["type"] != f"lifespan.{message}.complete":
            raise RuntimeError(f"lifespan {message}: {event}")

    task: asyncio.Future[None] = asyncio.ensure_future(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    )
    await step("startup")
    try:
        yield
    finally:
        await step("shutdown")
        await task


def scopes(
    spec: Any, material: Any, count: int, seed: int
) -> Iterator[tuple[dict[str, Any], bytes]]:
    path = f"/webhooks/{spec.provider}/{spec.name}"
    for request in signed_requests(spec, material, count=count, seed=seed):
        headers = [(b"host", b"127.0.0.1:8000")]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()]
        headers.append((b"content-length", str(len(request.body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        yield scope, request.body


async def drive(
    app: App, requests: list[tuple[dict[str, Any], bytes]], concurrency: int
) -> dict[int, int]:
    """Send every request through ``app``, ``concurrency`` at a time; count the statuses."""
    statuses: dict[int, int] = {}
    queue = iter(requests)

    async def client() -> None:
        for scope, body in queue:
            message = {"type": "http.request", "body": body, "more_body": False}

            async def receive(message: dict[str, Any] = message) -> dict[str, Any]:
                return message

            async def send(event: dict[str, Any]) -> None:
                if event["type"] == "http.response.start":
                    statuses[event["status"]] = statuses.get(event["status"], 0) + 1

            await app(scope, receive, send)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return statuses


async def measure(
    label: str, app: App, requests: list[Any], concurrency: int, profile: int, sort: str
) -> float:
    warm, run = requests[: len(requests) // 5], requests[len(requests) // 5 :]
    await drive(app, warm, concurrency)
    profiler = cProfile.Profile(time.process_time) if profile else None
    started = time.process_time()
    if profiler:
        profiler.enable()
    statuses = await drive(app, run, concurrency)
    if profiler:
        profiler.disable()
    cpu_us = (time.process_time() - started) * 1e6 / len(run)
    print(
        f"{label}: {cpu_us:.1f} µs CPU per request over {len(run)} requests, statuses {statuses}",
        flush=True,
    )
    if profiler:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats(sort).print_stats(profile)
    return cpu_us


async def run(args: argparse.Namespace, work: Path, db_url: str) -> None:
    spec, material = make_source(args.provider)
    requests = list(scopes(spec, material, args.requests, seed=0))
    os.environ["BENCH_SOURCE"] = spec_to_json(spec)
    receiver = importlib.import_module("bench.apps.receiver")
    floor = await measure(
        "floor (verify only)",
        receiver.app,
        requests,
        args.concurrency,
        0 if args.hookline_only else args.profile,
        args.sort,
    )

    from gateway.app import create_app
    from gateway.settings import load_settings

    app = create_app(load_settings(hookline_config(work, db_url, [spec])))
    async with lifespan(app):
        hookline = await measure(
            "Hookline", app, requests, args.concurrency, args.profile, args.sort
        )
    conn = await asyncpg.connect(db_url)
    try:
        stored = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    print(f"Hookline / floor, CPU per request: {hookline / floor:.2f}; events stored: {stored}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", default="sendgrid")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--profile", type=int, default=0, help="print the top N functions")
    parser.add_argument("--hookline-only", action="store_true", help="profile Hookline only")
    parser.add_argument(
        "--sort",
        default="tottime",
        choices=["tottime", "cumulative"],
        help="the profile's order: own time, or time including callees (the parts' shares)",
    )
    args = parser.parse_args()
    # the JSON log lines go where the bench sends them: nowhere
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    work = Path(tempfile.mkdtemp(prefix="hookline-profile-"))
    os.chmod(work, 0o755)
    pg = EmbeddedPostgres(work / "pg", durable=True)
    db_url = pg.start()

    async def migrate() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()

    try:
        asyncio.run(migrate())
        uvloop.run(run(args, work, db_url))
    finally:
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
