"""Delivery benchmark: events per second from the outbox to an HTTP sink and to RabbitMQ,
measured in one invocation on this machine.

    .venv/bin/python bench/delivery_bench.py [--events 20000]

For each sink kind, ``--events`` events are written through the real write path (the outbox
hook, one row per event for that one sink) while no dispatcher runs; then the process's
delivery workers run as ``hookline serve`` runs them (2 dispatcher loops, batches of 100,
32 attempts in flight each) until the outbox is empty, and the figure is events / elapsed.

* HTTP: signed Standard Webhooks POSTs to the smallest ASGI app that answers 200 (uvicorn,
  uvloop, httptools, its own process).
* AMQP: persistent, mandatory messages with publisher confirms to a real ``rabbitmq-server``
  (Debian package; started from a temp dir as in the tests), routed to one durable queue;
  the queue's message count is checked against the events written.

PostgreSQL is the embedded durable cluster (fsync on). Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.clock import SystemClock  # noqa: E402
from gateway.delivery import DeliveryService  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.storage.embedded import EmbeddedPostgres  # noqa: E402
from gateway.storage.migrate import apply_migrations  # noqa: E402
from gateway.storage.pool import create_pool  # noqa: E402
from gateway.storage.store import EventStore  # noqa: E402
from handlers import sendgrid  # noqa: E402
from handlers.base import WebhookRequest  # noqa: E402
from hookline_testing import samples_for  # noqa: E402
from observability.metrics import Metrics  # noqa: E402
from observability.tracing import configure_tracing  # noqa: E402
from tests.integration._rabbitmq import SERVER, RabbitBroker, free_port  # noqa: E402

SECRET = "whsec_" + "a2V5LWZvci10aGUtZGVsaXZlcnktYmVuY2g="
QUEUE = "bench-events"


async def seed(db_url: str, settings: Settings, count: int) -> None:
    """``count`` new events through EventStore with the sink's outbox hook (not timed)."""
    pool = await create_pool(db_url, min_size=1, max_size=2, command_timeout=600)
    try:
        store = EventStore(pool)
        received = datetime.now(UTC)
        await store.ensure_partitions(received.date())
        service = _service(settings, pool, db_url)
        store.add_hook(service.writer)
        spec, _ = samples_for("sendgrid").make_source("main")
        request = WebhookRequest("POST", "", {}, samples_for("sendgrid").example_body(500, seed=7))
        template = sendgrid.ADAPTER.parse(request, spec, received).events
        run = time.time_ns()
        for n in range(0, count, len(template)):
            events = [
                msgspec.structs.replace(e, dedup_key=f"{e.dedup_key}:{run}:{n}")
                for e in template[: count - n]
            ]
            await store.write_events(events)
    finally:
        await pool.close()


def _service(
    settings: Settings, pool: asyncpg.Pool, db_url: str, http: httpx.AsyncClient | None = None
) -> DeliveryService:
    return DeliveryService(
        settings,
        pool=pool,
        http=http or httpx.AsyncClient(),
        metrics=Metrics(),
        tracer=configure_tracing(),
        database_url=db_url,
        clock=SystemClock(),
    )


async def deliver_all(db_url: str, settings: Settings, count: int) -> float:
    """Run the delivery workers until the outbox is empty; events/s."""
    pool = await create_pool(db_url, min_size=2, max_size=10, command_timeout=600)
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    http = httpx.AsyncClient(limits=limits)
    service = _service(settings, pool, db_url, http)
    stop = asyncio.Event()
    try:
        started = time.perf_counter()
        loops = [
            asyncio.create_task(service.dispatcher.run(stop))
            for _ in range(settings.delivery.dispatcher_loops)
        ]
        while True:
            async with pool.acquire() as conn:
                left = int(await conn.fetchval("SELECT count(*) FROM outbox"))
            if left == 0:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        stop.set()
        service.dispatcher.wake()
        await asyncio.gather(*loops)
        async with pool.acquire() as conn:
            dead = int(await conn.fetchval("SELECT count(*) FROM dlq"))
        if dead:
            raise RuntimeError(f"{dead} deliveries were dead-lettered")
        return count / elapsed
    finally:
        await service.close()
        await http.aclose()
        await pool.close()


def settings_for(db_url: str, sink: dict[str, Any]) -> Settings:
    return msgspec.convert({"database": {"url": db_url}, "sinks": [sink]}, Settings)


async def reset(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await apply_migrations(conn)
        await conn.execute("TRUNCATE events, event_keys, outbox, dlq")
    finally:
        await conn.close()


async def bind_queue(broker: RabbitBroker) -> None:
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            "hookline", aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(QUEUE, durable=True)
        await queue.purge()
        await queue.bind(exchange, "hookline.#")


async def queued(broker: RabbitBroker) -> int:
    connection = await aio_pika.connect(broker.url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(QUEUE, durable=True, passive=True)
        return int(queue.declaration_result.message_count or 0)


def start_http_sink(port: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.apps.bare:app",
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
    process = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(f"http://127.0.0.1:{port}/", content=b"{}", timeout=1)
            return process
        time.sleep(0.1)
    process.terminate()
    raise RuntimeError("the HTTP sink did not start")


async def run(args: argparse.Namespace, db_url: str, broker: RabbitBroker) -> dict[str, float]:
    results: dict[str, float] = {}
    http_port = free_port()
    sink_process = start_http_sink(http_port)
    try:
        cases = {
            "http": {
                "name": "http",
                "url": f"http://127.0.0.1:{http_port}/hooks",
                "secret": SECRET,
            },
            "amqp": {
                "name": "amqp",
                "kind": "amqp",
                "url": broker.url_without_password,
                "password": broker.password,
            },
        }
        for _ in range(args.rounds):
            for name, sink in cases.items():
                settings = settings_for(db_url, sink)
                await reset(db_url)
                if name == "amqp":
                    await bind_queue(broker)
                await seed(db_url, settings, args.events)
                rate = await deliver_all(db_url, settings, args.events)
                if name == "amqp":
                    assert await queued(broker) == args.events, "messages missing in the queue"
                print(f"{name}: {rate:,.0f} events/s", flush=True)
                results[name] = max(results.get(name, 0.0), rate)
    finally:
        sink_process.terminate()
        sink_process.wait(timeout=10)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events per sink kind")
    parser.add_argument("--rounds", type=int, default=2, help="runs per kind (best is kept)")
    args = parser.parse_args()
    if not os.path.exists(SERVER):
        print("rabbitmq-server is required: apt-get install rabbitmq-server", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="hookline-delivery-bench-"))
    os.chmod(work, 0o755)
    pg = EmbeddedPostgres(work / "pg", durable=True)
    db_url = pg.start()
    broker = RabbitBroker()
    try:
        broker.start()
        results = asyncio.run(run(args, db_url, broker))
    finally:
        broker.close()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"delivered events/s from the outbox ({args.events} events, best of {args.rounds}): "
        + ", ".join(f"{name} {rate:,.0f}" for name, rate in results.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
