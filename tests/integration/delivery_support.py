"""Helpers for the delivery tests: real local HTTP sinks, events, and a delivery stack on a
fresh database driven by a manual clock."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import uvicorn

from gateway.clock import Clock, SystemClock
from gateway.delivery import DeliveryService
from gateway.settings import Settings
from gateway.storage.pool import create_pool
from gateway.storage.store import EventStore
from handlers.events import BounceClass, EmailEvent, EventType
from observability.metrics import Metrics
from observability.tracing import configure_tracing
from tests.integration._metric_sum import metric_sum


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: seconds to wait before answering (a sink that times out)
    delay: float = 0.0
    body: bytes = b"ok"


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    at: datetime

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return msgspec.json.decode(self.body)


# -- behaviours: request number (0-based) -> Reply -----------------------------------------
Behaviour = Callable[[int], Reply]


def healthy(_: int) -> Reply:
    return Reply(200)


def always(status: int, **headers: str) -> Behaviour:
    return lambda _: Reply(status, dict(headers))


def fails_then_recovers(failures: int, status: int = 500) -> Behaviour:
    return lambda n: Reply(status) if n < failures else Reply(200)


def slow(delay: float) -> Behaviour:
    return lambda _: Reply(200, delay=delay)


class SinkServer:
    """A real HTTP server on 127.0.0.1 that records every request it completes or starts."""

    def __init__(self, behaviour: Behaviour, clock: Clock | None = None) -> None:
        self.behaviour = behaviour
        self.clock = clock
        self.received: list[Received] = []
        self.started: list[Received] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def _now(self) -> datetime:
        return self.clock.now() if self.clock is not None else datetime.now(UTC)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        record = Received(headers, body, self._now())
        index = len(self.started)
        self.started.append(record)
        reply = self.behaviour(index)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        self.received.append(record)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(k.encode(), v.encode()) for k, v in reply.headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})

    async def start(self) -> None:
        config = uvicorn.Config(
            self,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(400):
            if self._server.started or self._task.done():
                break
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()
        assert self._server.started

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=10)

    def ids(self) -> list[str]:
        return [record.webhook_id for record in self.received]


@contextlib.asynccontextmanager
async def sink_servers(*servers: SinkServer) -> AsyncIterator[None]:
    for server in servers:
        await server.start()
    try:
        yield
    finally:
        for server in servers:
            await server.stop()


def sink(name: str, server: SinkServer, **overrides: Any) -> dict[str, Any]:
    """A ``[[sinks]]`` entry for ``server``."""
    return {"name": name, "url": server.url, "secret": new_secret(), **overrides}


def event(
    n: int,
    *,
    event_type: EventType = EventType.DELIVERED,
    recipient: str | None = None,
    bounce_class: BounceClass | None = None,
    at: datetime | None = None,
    provider: str = "sendgrid",
) -> EmailEvent:
    """A distinct normalized event (``n`` makes its dedup key)."""
    when = at or datetime.now(UTC)
    return EmailEvent(
        provider=provider,
        source="main",
        event_type=event_type,
        occurred_at=when,
        received_at=when,
        recipient=recipient or f"user{n}@example.com",
        message_id=f"msg-{n}",
        dedup_key=f"{provider}:test-{event_type.value}-{n}-{when.timestamp()}",
        provider_event_id=f"test-{n}",
        bounce_class=bounce_class,
        raw={"n": n},
    )


@dataclass
class DeliveryStack:
    """A store with the outbox hook, a delivery service, a manual clock and fresh metrics."""

    settings: Settings
    store: EventStore
    service: DeliveryService
    #: a ManualClock when the test passed one, else the system clock
    clock: Clock
    metrics: Metrics

    async def write(self, events: Sequence[EmailEvent]) -> set[str]:
        return await self.store.write_events(events)

    async def drain(self, passes: int = 20) -> int:
        """Run dispatcher passes until one claims nothing; return the rows claimed."""
        total = 0
        for _ in range(passes):
            claimed = await self.service.dispatcher.run_once()
            if not claimed:
                break
            total += claimed
        return total

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples whose labels include ``labels`` (0.0 when none)."""
        return metric_sum(self.metrics.registry, name, **labels)

    async def scalar(self, sql: str, *args: Any) -> Any:
        async with self.store.pool.acquire() as conn:
            return await conn.fetchval(sql, *args)

    async def rows(self, sql: str, *args: Any) -> list[Any]:
        async with self.store.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))


def delivery_settings(db_url: str, **sections: Any) -> Settings:
    raw: dict[str, Any] = {"database": {"url": db_url}, **sections}
    return msgspec.convert(raw, Settings)


@contextlib.asynccontextmanager
async def delivery_stack(
    db_url: str,
    *,
    sinks: Sequence[dict[str, Any]] = (),
    clock: Clock | None = None,
    random: Callable[[], float] = lambda: 1.0,
    concurrency: int = 1,
    batch_size: int = 100,
    suppressions: dict[str, Any] | None = None,
    pool_size: int = 5,
) -> AsyncIterator[DeliveryStack]:
    """A delivery stack on ``db_url``; ``random`` defaults to 1.0 (the full backoff).
    Without a clock the system clock is used."""
    clock = clock or SystemClock()
    settings = delivery_settings(db_url, sinks=list(sinks), suppressions=suppressions or {})
    pool = await create_pool(db_url, min_size=1, max_size=pool_size)
    metrics = Metrics()
    http = httpx.AsyncClient(follow_redirects=False)
    try:
        store = EventStore(pool)
        service = DeliveryService(
            settings,
            pool=pool,
            http=http,
            metrics=metrics,
            tracer=configure_tracing(),
            database_url=db_url,
            clock=clock,
            random=random,
            concurrency=concurrency,
            batch_size=batch_size,
        )
        store.add_hook(service.writer)
        try:
            yield DeliveryStack(settings, store, service, clock, metrics)
        finally:
            await service.close()
    finally:
        await http.aclose()
        await pool.close()
