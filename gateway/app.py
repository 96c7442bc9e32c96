"""The app factory: ``create_app(settings) -> Litestar``. Nothing happens at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import structlog
from litestar import Litestar, Router
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler
from prometheus_client import (
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from gateway.errors import exception_handlers
from gateway.ingest.batcher import Batcher
from gateway.ingest.drainer import SpoolDrainer
from gateway.ingest.exit_drain import drain_spool_at_exit
from gateway.ingest.isolation import IsolatingWriter
from gateway.ingest.pipeline import Ingestor
from gateway.ingest.spool import Spool
from gateway.nonces import NonceStore
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

__all__ = ["build_runtime", "create_app"]

log = structlog.get_logger("hookline.app")

#: components that extend the runtime (write hooks, background workers) after it is built
RuntimeExtension = Callable[[Runtime], None]


def _extensions() -> list[RuntimeExtension]:
    """The optional parts wired into every runtime (delivery, retention, spool, ...)."""
    from gateway.delivery import install_delivery
    from gateway.query.extension import install_read_side

    extensions: list[RuntimeExtension] = [install_read_side, install_delivery]
    return extensions


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


def _admin_security() -> Any:
    """The admin API's bearer-token scheme, for the OpenAPI document."""
    from gateway.routes.admin_openapi import ADMIN_SECURITY_COMPONENTS

    return ADMIN_SECURITY_COMPONENTS


def _openapi_plugins() -> list[Any]:
    """Request bodies that refuse unknown fields say so in the OpenAPI document."""
    from gateway.routes.admin_openapi import StrictStructSchemaPlugin

    return [StrictStructSchemaPlugin()]


async def build_runtime(
    settings: Settings, metrics_: Metrics, *, serve_workers: bool, role: str = "gateway"
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
    writer = IsolatingWriter(
        store,
        QuarantineStore(database.pool),
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
    spool: Spool | None = None
    if settings.storage.spool_enabled and role == "gateway":
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
    runtime = Runtime(
        settings=settings,
        metrics=metrics_,
        tracer=tracer,
        database=database,
        sources=SourceTable(settings),
        batcher=batcher,
        storage_breaker=storage_breaker,
        ingestor=Ingestor(batcher, storage_breaker, metrics_, spool, writer),
        http=http,
        certificates=SnsCertificates.configured(http, metrics_, settings.sns),
        nonces=NonceStore(
            settings.data_dir / "nonces",
            store,
            storage_breaker,
            metrics_,
            memory_max=settings.ingest.nonce_memory_max,
            connected=database.connected,
        ),
        serve_workers=serve_workers,
    )
    runtime.add_background("storage-connector", connector.run, needs_storage=False)
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
    for extend in _extensions():
        extend(runtime)
    metrics_.preinitialise(
        PROVIDERS,
        sinks=[sink.name for sink in settings.sinks],
        breakers=["storage", *[f"sink:{s.name}" for s in settings.sinks]],
        sources=[(source.provider, source.name) for source in settings.sources],
    )
    return runtime


def create_app(
    settings: Settings, *, metrics_: Metrics | None = None, role: str = "gateway"
) -> Litestar:
    """The gateway as an ASGI app. The runtime is built in the lifespan, not here.

    ``role="worker"`` serves only /livez (/healthz), /readyz and /metrics and always runs
    the background workers (``hookline worker``); it has no spool (the gateway drains its own).
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
