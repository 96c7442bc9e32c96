"""Liveness, readiness and the Prometheus scrape endpoint."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics.exposition import (
    CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from gateway.runtime import Runtime

__all__ = ["healthz", "metrics", "readyz"]

_encode = msgspec.json.Encoder().encode


@get(["/livez", "/healthz"], include_in_schema=False, sync_to_thread=False)
def healthz() -> Response[bytes]:
    """The process is alive and serving (whether or not PostgreSQL is: see /readyz)."""
    return Response(content=b'{"status":"ok"}', media_type="application/json")


@get("/readyz", include_in_schema=False)
async def readyz(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Ready while the events can be made durable: the database answers or the spool can
    take writes, and the spool is not stuck (the database answers, yet the drainer has
    moved nothing for ``storage.spool_stuck_seconds`` while records wait). A database
    outage alone never makes the gateway unready while the spool can take events."""
    runtime: Runtime = request.app.state.runtime
    connected = runtime.database.connected.is_set()  # else the pool would try to connect
    database = connected and await runtime.database.store.ping()
    spool = runtime.ingestor.spool
    spool_ok = spool is not None and spool.writable()
    body: dict[str, Any] = {
        "database": "ok" if database else "unavailable",
        "storage": "ok" if database else "degraded",
        "spool": "disabled" if spool is None else ("ok" if spool_ok else "unavailable"),
        "storage_breaker": runtime.storage_breaker.state,
    }
    stuck = False
    if spool is not None:
        held = spool.events
        stuck = (
            database
            and held > 0
            and spool.stalled_seconds() > runtime.settings.storage.spool_stuck_seconds
        )
        body["spool_events"] = held
        body["spool_oldest_event_age_seconds"] = round(spool.oldest_age_seconds(), 3)
        body["spool_state"] = (
            "empty" if not held else "stuck" if stuck else "draining" if database else "waiting"
        )
    ready = (database or spool_ok) and not stuck and not runtime.stopping
    status = "ready" if ready else "stopping" if runtime.stopping else "unavailable"
    body = {"status": status, **body}
    return Response(
        content=_encode(body), status_code=200 if ready else 503, media_type="application/json"
    )


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text format; OpenMetrics (with exemplars) when the scraper asks for it."""
    runtime: Runtime = request.app.state.runtime
    accept = request.headers.get("accept", "")
    if "application/openmetrics-text" in accept:
        return Response(
            content=generate_openmetrics(runtime.metrics.registry),  # type: ignore[no-untyped-call]
            media_type=OPENMETRICS_CONTENT_TYPE,
        )
    return Response(
        content=generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
