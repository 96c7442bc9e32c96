"""Everything a running gateway holds, built once by the app factory (``gateway/app.py``)
and shared by routes and background workers: settings, metrics, tracer, database, batcher,
ingestor, sources, the downstream HTTP client, SNS certificates and control messages, the
read service, the quarantine, delivery
(DLQ, replay jobs, suppression list) and the background tasks. The admin routes receive
these services as parameters (Litestar dependencies, ``gateway/routes/admin_dependencies.py``);
only the webhook fast path and the health routes read the runtime itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import structlog
from opentelemetry.trace import Tracer

from gateway.control_messages import ControlMessages
from gateway.delivery.service import DeliveryService
from gateway.ingest.batcher import Batcher
from gateway.ingest.pipeline import Ingestor
from gateway.nonces import NonceStore
from gateway.periodic import BackgroundTask
from gateway.query.reads import ReadService
from gateway.resilience import AsyncCircuitBreaker
from gateway.settings import Settings
from gateway.sns_certificates import SnsCertificates
from gateway.sources import SourceTable
from gateway.storage.database import Database
from gateway.storage.quarantine import QuarantineStore
from observability.metrics import Metrics

__all__ = ["Runtime"]

log = structlog.get_logger("hookline.runtime")


@dataclass
class Runtime:
    settings: Settings
    metrics: Metrics
    tracer: Tracer
    database: Database
    sources: SourceTable
    batcher: Batcher
    storage_breaker: AsyncCircuitBreaker
    ingestor: Ingestor
    http: httpx.AsyncClient
    certificates: SnsCertificates
    control_messages: ControlMessages
    nonces: NonceStore
    reads: ReadService
    quarantine: QuarantineStore
    delivery: DeliveryService
    #: run the outbox workers in this process (``hookline serve``; ``hookline worker``)
    serve_workers: bool = True
    #: SIGTERM received: acknowledge no more webhooks (503), report not ready
    stopping: bool = False
    background: list[tuple[str, BackgroundTask]] = field(default_factory=list)
    #: extra close callbacks (run in reverse order at shutdown)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: background tasks that run before the database is connected (the storage connector)
    _without_storage: set[str] = field(default_factory=set)

    # -- lifecycle ------------------------------------------------------------------------
    def add_background(
        self, name: str, task: BackgroundTask, *, needs_storage: bool = True
    ) -> None:
        """Run ``task`` from ``start`` until ``close``; unless ``needs_storage`` is False, only
        once the database is connected (a start with PostgreSQL down defers it)."""
        self.background.append((name, task))
        if not needs_storage:
            self._without_storage.add(name)

    def start(self) -> None:
        self.batcher.start()
        for name, task in self.background:
            self._tasks.append(asyncio.create_task(self._supervise(name, task), name=name))

    async def _supervise(self, name: str, task: BackgroundTask) -> None:
        """Run a background task; restart it (with a pause) if it crashes."""
        if name not in self._without_storage and not await self._storage_connected():
            return
        while not self._stop.is_set():
            try:
                await task(self._stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background.crashed", task=name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=1.0)

    async def _storage_connected(self) -> bool:
        """Wait until the database is connected (True) or the runtime stops (False)."""
        if not self.database.connected.is_set():
            waits = [
                asyncio.create_task(self.database.connected.wait()),
                asyncio.create_task(self._stop.wait()),
            ]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for waiting in waits:
                waiting.cancel()
        return self.database.connected.is_set() and not self._stop.is_set()

    async def close(self) -> None:
        self._stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=20)
            for task in pending:
                task.cancel()
        await self.batcher.close()
        for closer in reversed(self.closers):
            try:
                await closer()
            except Exception:
                log.exception("shutdown.closer_failed")
        await self.control_messages.close()
        await self.http.aclose()
        await self.database.close()
