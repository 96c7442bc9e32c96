"""The app factory: ``create_app(settings) -> Litestar``. Nothing happens at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx
import structlog
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler
from prometheus_client import (
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from gateway.control_messages import ControlMessages
from gateway.delivery.service import DeliveryService
from gateway.errors import exception_handlers
from gateway.ingest.batcher import Batcher
from gateway.ingest.drainer import SpoolDrainer
from gateway.ingest.exit_drain import drain_spool_at_exit
from gateway.ingest.isolation import IsolatingWriter
from gateway.ingest.pipeline import Ingestor
from gateway.ingest.spool import Spool
from gateway.ingest.spool_lock import SpoolLock
from gateway.nonces import NonceStore
from gateway.periodic import BackgroundTask
from gateway.query.reads import ReadService
from gateway.resilience import AsyncCircuitBreaker
from gateway.routes.health import healthz, metrics, readyz
from gateway.routes.storage_guard import require_storage
from gateway.routes.webhooks import webhook_endpoint
from gateway.runtime import Runtime
from gateway.settings import Settings
from gateway.sns_certificates import SnsCertificates
from gateway.sources import SourceTable
from gateway.storage.connector import StorageConnector
from gateway.storage.data_errors import is_data_error
from gateway.storage.database import open_database_or_defer
from gateway.storage.quarantine import QuarantineStore
from handlers.registry import PROVIDERS
from observability.gc_tuning import tune_garbage_collector
from observability.logging import configure_logging
from observability.metrics import Metrics
from observability.tracing import configure_tracing, shutdown_tracing

__all__ = ["Role", "build_runtime", "create_app"]

log = structlog.get_logger("hookline.app")


#: what a process is: ``gateway`` serves the webhooks and the admin API (and the workers
#: when ``[server] workers``); ``worker`` serves only health and metrics and runs the workers
Role = Literal["gateway", "worker"]


def _read_side_tasks(runtime: Runtime, *, runs_workers: bool) -> list[tuple[str, BackgroundTask]]:
    """The read side's background tasks (imported here: bench/query_bench.py swaps them)."""
    from gateway.query.workers import read_side_tasks

    return read_side_tasks(
        runtime.database.pool,
        runtime.database.store,
        runtime.metrics,
        runtime.settings,
        runs_workers=runs_workers,
    )


def _admin_routes() -> list[ControllerRouterHandler]:
    """The admin API (/v1) routers."""
    from gateway.routes.admin_control import control_router
    from gateway.routes.admin_dlq import dlq_router
    from gateway.routes.admin_quarantine import quarantine_router
    from gateway.routes.admin_query import query_router
    from gateway.routes.admin_suppressions import suppressions_router

    routes: list[ControllerRouterHandler] = [
        query_router,
        dlq_router,
        suppressions_router,
        control_router,
        quarantine_router,
    ]
    return routes


def _admin_dependencies() -> dict[str, Provide]:
    """The services the admin routes receive as parameters (built once, in the lifespan)."""
    from gateway.routes.admin_dependencies import admin_dependencies

    return admin_dependencies()


def _admin_security() -> Any:
    """The admin API's bearer-token scheme, for the OpenAPI document."""
    from gateway.routes.admin_openapi import ADMIN_SECURITY_COMPONENTS

    return ADMIN_SECURITY_COMPONENTS


def _openapi_plugins() -> list[Any]:
    """Request bodies that refuse unknown fields say so in the OpenAPI document."""
    from gateway.routes.admin_openapi import StrictStructSchemaPlugin

    return [StrictStructSchemaPlugin()]


def _spool_lock(settings: Settings, role: Role) -> SpoolLock | None:
    """The gateway owns its spool directory; ``hookline worker`` drains one only when no
    gateway holds it (a spool left by a gateway that is gone, see gateway/ingest/spool_lock.py)."""
    directory = settings.data_dir / "spool"
    if role == "gateway" and not settings.storage.spool_enabled:
        return None
    if role != "gateway" and not directory.is_dir():
        return None  # nothing to drain (and a worker's data_dir may be read-only)
    try:
        lock = SpoolLock.try_acquire(directory)
    except OSError as exc:  # a read-only volume: the gateway's spool reports it unwritable
        log.warning("spool.lock_unavailable", error=type(exc).__name__)
        return None
    if lock is None:
        if role == "gateway":
            log.warning("spool.directory_shared", data_dir=str(settings.data_dir))
        else:
            log.info("spool.owned_by_gateway", data_dir=str(settings.data_dir))
    return lock


async def build_runtime(
    settings: Settings, metrics_: Metrics, *, serve_workers: bool, role: Role = "gateway"
) -> Runtime:
    """Open the database and assemble the runtime (not started)."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    tracer = configure_tracing()
    database = await open_database_or_defer(settings)
    connector = StorageConnector(database, settings, metrics_)
    storage_breaker = AsyncCircuitBreaker(
        "storage",
        metrics_,
        fail_max=settings.storage.breaker_fail_max,
        reset_timeout=settings.storage.breaker_reset_seconds,
        exclude=(is_data_error,),  # a record PostgreSQL refuses is quarantined, not an outage
    )
    store = database.store
    quarantine = QuarantineStore(database.pool)
    writer = IsolatingWriter(
        store,
        quarantine,
        storage_breaker,
        metrics_,
        connected=database.connected,  # before the first connection: to the spool at once
    )
    batcher = Batcher(
        writer.write,
        metrics_,
        batch_max_events=settings.ingest.batch_max_events,
        max_flushes_in_flight=settings.ingest.max_flushes_in_flight,
        queue_max_events=settings.ingest.queue_max_events,
        tracer=tracer,
    )
    spool_lock = _spool_lock(settings, role)
    spool: Spool | None = None
    if spool_lock is not None or (settings.storage.spool_enabled and role == "gateway"):
        spool = Spool(
            settings.data_dir / "spool",
            metrics_,
            max_bytes=settings.storage.spool_max_bytes,
            segment_bytes=settings.storage.spool_segment_bytes,
        )
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.http_client.timeout_seconds),
        limits=httpx.Limits(
            max_connections=settings.http_client.max_connections,
            max_keepalive_connections=settings.http_client.max_keepalive_connections,
        ),
        follow_redirects=False,
    )
    delivery = DeliveryService(
        settings,
        pool=database.pool,
        http=http,
        metrics=metrics_,
        tracer=tracer,
        database_url=database.url,
        exports_gauges=serve_workers,
    )
    sources = SourceTable(settings)
    certificates = SnsCertificates.configured(http, metrics_, settings.sns)
    runtime = Runtime(
        settings=settings,
        metrics=metrics_,
        tracer=tracer,
        database=database,
        sources=sources,
        batcher=batcher,
        storage_breaker=storage_breaker,
        ingestor=Ingestor(batcher, metrics_, spool, writer),
        http=http,
        certificates=certificates,
        control_messages=ControlMessages(sources, store, certificates, metrics_),
        nonces=NonceStore(
            settings.data_dir / "nonces",
            store,
            storage_breaker,
            metrics_,
            memory_max=settings.ingest.nonce_memory_max,
            connected=database.connected,
        ),
        reads=ReadService(database.pool),
        quarantine=quarantine,
        delivery=delivery,
        serve_workers=serve_workers,
    )
    runtime.add_background("storage-connector", connector.run, needs_storage=False)
    if spool_lock is not None:
        runtime.closers.append(spool_lock.release)  # closers run in reverse: after the spool
    if spool is not None:
        drainer = SpoolDrainer(
            spool,
            writer,
            storage_breaker,
            metrics_,
            interval=settings.storage.drain_interval_seconds,
            chunk_events=settings.storage.drain_chunk_events,
            replays=runtime.nonces,
        )
        runtime.add_background("spool-drainer", drainer.run)
        runtime.closers.append(spool.close)

        async def drain_at_exit(spool: Spool = spool, drainer: SpoolDrainer = drainer) -> None:
            budget = settings.storage.shutdown_drain_seconds
            await drain_spool_at_exit(spool, drainer, connector, budget)

        runtime.closers.append(drain_at_exit)  # closers run in reverse: before spool.close
    elif role == "gateway":
        runtime.add_background("nonce-journal", runtime.nonces.run)
    for name, task in _read_side_tasks(runtime, runs_workers=serve_workers):
        runtime.add_background(name, task)
    store.add_hook(delivery.writer)  # every process: events it writes get their outbox rows
    runtime.closers.append(delivery.bulk_replays.close)
    if serve_workers:
        runtime.closers.append(delivery.close)
        for name, task in delivery.background_tasks():
            runtime.add_background(name, task)
    metrics_.preinitialise(
        PROVIDERS,
        sinks=[sink.name for sink in settings.sinks],
        breakers=["storage", *[f"sink:{s.name}" for s in settings.sinks]],
        sources=[(source.provider, source.name) for source in settings.sources],
    )
    return runtime


def create_app(
    settings: Settings, *, metrics_: Metrics | None = None, role: Role = "gateway"
) -> Litestar:
    """The gateway as an ASGI app. The runtime is built in the lifespan, not here.

    ``role="worker"`` serves only /livez (/healthz), /readyz and /metrics and always runs
    the background workers (``hookline worker``); it drains a spool directory it finds only
    when no gateway holds it (``_spool_lock``), and never writes to one.
    """
    metrics_ = metrics_ or Metrics()
    for collector in (ProcessCollector, PlatformCollector, GCCollector):
        collector(registry=metrics_.registry)
    configure_logging(
        settings.logging.level, settings.logging.format, settings.logging.mask_recipients
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime = await build_runtime(
            settings,
            metrics_,
            serve_workers=role == "worker" or settings.server.workers,
            role=role,
        )
        app.state.runtime = runtime
        runtime.start()
        tune_garbage_collector()
        log.info(
            "gateway.started",
            role=role,
            sources=len(runtime.sources),
            sinks=len(settings.sinks),
            embedded_database=runtime.database.embedded is not None,
            storage="connected" if runtime.database.connected.is_set() else "unavailable",
            config=settings.origin,
        )
        try:
            yield
        finally:
            log.info("gateway.stopping")
            await runtime.close()
            shutdown_tracing()
            log.info("gateway.stopped")

    handlers: list[ControllerRouterHandler] = [healthz, readyz, metrics]
    if role == "gateway":
        # the admin API reads and changes PostgreSQL: 503 until it is connected
        handlers += [
            webhook_endpoint,
            Router("/", route_handlers=_admin_routes(), guards=[require_storage]),
        ]
    return Litestar(
        route_handlers=handlers,
        dependencies=_admin_dependencies(),
        lifespan=[lifespan],
        exception_handlers=exception_handlers,
        openapi_config=OpenAPIConfig(
            title="Hookline",
            version="0.1.0",
            path="/schema",
            description=__doc__,
            components=_admin_security(),
        ),
        plugins=_openapi_plugins(),
        request_max_body_size=settings.ingest.max_body_bytes,
        logging_config=None,  # observability.logging routes stdlib logs through structlog
        debug=False,
    )
