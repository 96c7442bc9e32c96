"""Everything a running gateway holds, built once by the app factory and shared by routes
and background workers: settings, metrics, tracer, database, batcher, ingestor, sources,
the downstream HTTP client and the background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import asyncpg
import httpx
import structlog
from opentelemetry.trace import Tracer

from gateway.ingest.batcher import Batcher
from gateway.ingest.pipeline import Ingestor
from gateway.resilience import AsyncCircuitBreaker, CircuitOpenError
from gateway.settings import Settings
from gateway.sources import SourceTable
from gateway.storage.database import Database
from handlers.base import ControlKind, ControlMessage
from observability.metrics import Metrics

__all__ = ["BackgroundTask", "CertificateUnavailableError", "Runtime"]

log = structlog.get_logger("hookline.runtime")

#: a long-running coroutine that returns when ``stop`` is set
BackgroundTask = Callable[[asyncio.Event], Awaitable[None]]

_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
#: control messages logged as warnings; the rest (misrouted inbound traffic, SES's topic
#: validation) are logged at info: nothing to do but know
_NEEDS_ATTENTION = frozenset(
    {ControlKind.SUBSCRIPTION_CONFIRMATION.value, ControlKind.UNSUBSCRIBE_CONFIRMATION.value}
)


class CertificateUnavailableError(Exception):
    """An SNS signing certificate could not be fetched now (the request may be retried)."""


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
    certificate_breaker: AsyncCircuitBreaker
    #: run the outbox workers in this process (``hookline serve``; ``hookline worker``)
    serve_workers: bool = True
    background: list[tuple[str, BackgroundTask]] = field(default_factory=list)
    #: extra close callbacks (run in reverse order at shutdown)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _certificates: dict[str, bytes] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _confirmations: set[asyncio.Task[None]] = field(default_factory=set)

    # -- lifecycle ------------------------------------------------------------------------
    def add_background(self, name: str, task: BackgroundTask) -> None:
        self.background.append((name, task))

    def start(self) -> None:
        self.batcher.start()
        for name, task in self.background:
            self._tasks.append(asyncio.create_task(self._supervise(name, task), name=name))

    async def _supervise(self, name: str, task: BackgroundTask) -> None:
        """Run a background task; restart it (with a pause) if it crashes."""
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
    async def remember_nonce(self, provider: str, source: str, nonce: str, digest: str) -> None:
        """Record a signature nonce; ``NonceConflictError`` on a replay with other content.
        When the database is unreachable the check is skipped (logged by the caller)."""
        if not self.storage_breaker.allows_call():
            raise TimeoutError("storage breaker open")
        try:
            await self.database.store.remember_nonce(provider, source, nonce, digest)
        except _DB_ERRORS as exc:
            raise TimeoutError(str(type(exc).__name__)) from exc

    async def fetch_certificate(self, url: str) -> bytes:
        """Fetch an SNS signing certificate (HTTPS, SNS hosts only), cached and guarded."""
        cached = self._certificates.get(url)
        if cached is not None:
            return cached
        parts = urlsplit(url)
        if parts.scheme != "https" or not _SNS_HOST.match(parts.hostname or ""):
            raise CertificateUnavailableError("not an SNS certificate URL")

        async def get() -> bytes:
            response = await self.http.get(url, timeout=5.0)
            response.raise_for_status()
            return response.content

        try:
            pem = await self.certificate_breaker.call(get)
        except (httpx.HTTPError, CircuitOpenError) as exc:
            raise CertificateUnavailableError(type(exc).__name__) from exc
        self._certificates[url] = pem
        return pem

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
            detail=dict(message.detail),
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
            except _DB_ERRORS as exc:
                log.error("webhook.control_message_not_recorded", error=type(exc).__name__)
        if entry is not None and entry.spec.auto_confirm and message.confirm_url:
            task = asyncio.create_task(self._confirm(message.confirm_url, record_id))
            self._confirmations.add(task)
            task.add_done_callback(self._confirmations.discard)

    async def _confirm(self, url: str, record_id: int | None) -> None:
        parts = urlsplit(url)
        error: str | None = None
        if parts.scheme != "https" or not _SNS_HOST.match(parts.hostname or ""):
            error = "refused: SubscribeURL is not an https SNS endpoint"
        else:
            try:
                response = await self.http.get(url, timeout=10.0)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}"
        log.info(
            "sns.subscription_confirmed" if error is None else "sns.confirm_failed", error=error
        )
        if record_id is not None:
            with contextlib.suppress(*_DB_ERRORS):
                await self.database.store.mark_control_confirmed(record_id, error)
