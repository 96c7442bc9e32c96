"""Everything a running gateway holds, built once by the app factory (``gateway/app.py``)
and shared by routes and background workers: settings, metrics, tracer, database, batcher,
ingestor, sources, the downstream HTTP client, the read service, the quarantine, delivery
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

from gateway.delivery.service import DeliveryService
from gateway.ingest.batcher import Batcher
from gateway.ingest.pipeline import Ingestor
from gateway.nonces import NonceStore
from gateway.periodic import BackgroundTask
from gateway.query.reads import ReadService
from gateway.resilience import AsyncCircuitBreaker
from gateway.settings import Settings
from gateway.sns_certificates import CertificateUnavailableError, SnsCertificates
from gateway.sources import SourceTable
from gateway.storage.database import Database
from gateway.storage.errors import DB_ERRORS
from gateway.storage.quarantine import QuarantineStore
from handlers.base import ControlKind, ControlMessage
from observability.metrics import Metrics

__all__ = ["BackgroundTask", "CertificateUnavailableError", "Runtime"]

log = structlog.get_logger("hookline.runtime")


#: control-message fields never logged: an SNS subscription token (alone or inside the
#: SubscribeURL) lets whoever reads the log confirm or re-subscribe the endpoint
_SECRET_DETAIL = frozenset({"token", "subscribe_url"})
#: control messages logged as warnings; the rest (misrouted inbound traffic, SES's topic
#: validation) are logged at info: nothing to do but know
_NEEDS_ATTENTION = frozenset(
    {ControlKind.SUBSCRIPTION_CONFIRMATION.value, ControlKind.UNSUBSCRIBE_CONFIRMATION.value}
)


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
    _confirmations: set[asyncio.Task[None]] = field(default_factory=set)
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
        for task in list(self._confirmations):
            task.cancel()
        await self.http.aclose()
        await self.database.close()

    # -- services used by routes ----------------------------------------------------------
    async def fetch_certificate(self, url: str) -> bytes:
        """An SNS signing certificate (see ``gateway.sns_certificates``)."""
        return await self.certificates.fetch(url)

    async def handle_control_message(
        self, provider: str, source: str, message: ControlMessage
    ) -> None:
        """Count and log a non-event message; record SNS (un)subscriptions (for
        ``/v1/control-messages``) and auto-confirm subscriptions."""
        self.metrics.control_messages.labels(provider, message.kind).inc()
        entry = self.sources.get(provider, source)
        # SNS (un)subscriptions may need someone to act; the rest is only worth knowing
        level = log.warning if message.kind in _NEEDS_ATTENTION else log.info
        level(
            "webhook.control_message",
            provider=provider,
            source=source,
            kind=message.kind,
            detail={k: v for k, v in message.detail.items() if k not in _SECRET_DETAIL},
            auto_confirm=bool(entry and entry.spec.auto_confirm),
        )
        record_id: int | None = None
        # only what an operator may have to act on is kept for /v1/control-messages: a
        # misrouted inbound webhook would otherwise add a row per received email, forever
        if message.kind in _NEEDS_ATTENTION:
            try:
                record_id = await self.database.store.record_control_message(
                    provider, source, message.kind, dict(message.detail), message.confirm_url
                )
            except DB_ERRORS as exc:
                log.error("webhook.control_message_not_recorded", error=type(exc).__name__)
        if entry is not None and entry.spec.auto_confirm and message.confirm_url:
            task = asyncio.create_task(self._confirm(message.confirm_url, record_id))
            self._confirmations.add(task)
            task.add_done_callback(self._confirmations.discard)

    async def _confirm(self, url: str, record_id: int | None) -> None:
        error = await self.certificates.confirm(url)
        log.info(
            "sns.subscription_confirmed" if error is None else "sns.confirm_failed", error=error
        )
        if record_id is not None:
            with contextlib.suppress(*DB_ERRORS):
                await self.database.store.mark_control_confirmed(record_id, error)
