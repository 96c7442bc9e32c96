"""At shutdown, empty the spool into PostgreSQL before the process (and, on Kubernetes, its
emptyDir) goes away; say loudly what is left, and where, when that cannot be done.

It runs after the HTTP server stopped taking requests and the batcher flushed, and before the
spool is closed. When the database was never reachable in this process it makes one more
attempt to finish the start (migrations, partitions) first. It keeps trying, as the storage
breaker allows, for ``[storage] shutdown_drain_seconds``.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from gateway.ingest.drainer import SpoolDrainer
from gateway.ingest.spool import Spool
from gateway.storage.connector import StorageConnector

__all__ = ["drain_spool_at_exit"]

log = structlog.get_logger("hookline.spool")

#: pause between attempts while the database or the breaker refuses
_RETRY_SECONDS = 0.5


async def drain_spool_at_exit(
    spool: Spool, drainer: SpoolDrainer, connector: StorageConnector, budget_seconds: float
) -> int:
    """Drain what is spooled within ``budget_seconds``; return the events left behind."""
    if spool.events == 0:
        return 0
    started = time.monotonic()
    deadline = started + budget_seconds
    log.info("spool.draining_at_exit", events=spool.events, budget_seconds=budget_seconds)
    moved = 0
    while spool.events and time.monotonic() < deadline:
        remaining = deadline - time.monotonic()
        try:
            if await asyncio.wait_for(connector.connect_once(), timeout=remaining):
                moved += await asyncio.wait_for(drainer.drain_once(), timeout=remaining)
        except TimeoutError:
            break
        except Exception as exc:  # the breaker counted it; try again while the budget lasts
            log.warning("spool.exit_drain_failed", error=type(exc).__name__)
        if spool.events:
            await asyncio.sleep(min(_RETRY_SECONDS, max(0.0, deadline - time.monotonic())))
    left = spool.events
    if left:
        log.error(
            "spool.left_at_exit",
            events=left,
            bytes=spool.total_bytes,
            directory=str(spool.directory.resolve()),
            drained=moved,
            action=(
                "these acknowledged events are only in this directory: start a gateway on "
                "the same data directory (same volume) once PostgreSQL is reachable and they "
                "are drained; if the directory is an emptyDir, they are lost with the pod"
            ),
        )
    else:
        log.info(
            "spool.drained_at_exit",
            events=moved,
            seconds=round(time.monotonic() - started, 2),
        )
    return left
