"""Keeps track of whether PostgreSQL can be used, and finishes a start made without it.

A gateway whose database was unreachable at start (``open_database_or_defer``) runs on its
spool; ``StorageConnector.run`` retries with exponential backoff (capped by
``[database] connect_retry_max_seconds``) until migrations and partitions are done, then sets
``Database.connected``, which releases the background workers (spool drainer, outbox
dispatchers, ...). From then on it pings every few seconds so that
``hookline_storage_connected`` and ``hookline_storage_unreachable_seconds`` stay current.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from gateway.settings import Settings
from gateway.storage.database import UNREACHABLE_ERRORS, Database, prepare_schema
from observability.metrics import Metrics

__all__ = ["StorageConnector"]

log = structlog.get_logger("hookline.storage")


class StorageConnector:
    def __init__(self, database: Database, settings: Settings, metrics: Metrics) -> None:
        self.database = database
        self.settings = settings
        self.metrics = metrics
        now = time.monotonic()
        self._started = now
        self._reachable_now = database.connected.is_set()
        self._last_reachable: float | None = now if self._reachable_now else None
        self._last_error = ""
        metrics.storage_connected.set(1 if self._reachable_now else 0)
        metrics.storage_unreachable_seconds.set_function(self.unreachable_seconds)

    def unreachable_seconds(self) -> float:
        """0 while reachable; else the seconds since it last was (or since start)."""
        if self._reachable_now:
            return 0.0
        since = self._last_reachable if self._last_reachable is not None else self._started
        return time.monotonic() - since

    def _reachable(self, ok: bool) -> None:
        self._reachable_now = ok
        if ok:
            self._last_reachable = time.monotonic()
        self.metrics.storage_connected.set(1 if ok else 0)

    async def connect_once(self) -> bool:
        """One attempt to finish the start (migrations, partitions); True once connected."""
        if self.database.connected.is_set():
            return True
        try:
            await prepare_schema(self.database.url, self.database.store, self.settings)
        except UNREACHABLE_ERRORS as exc:
            self._last_error = type(exc).__name__
            return False
        self.database.connected.set()
        self._reachable(True)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Connect (if the start did not), then watch; returns when ``stop`` is set."""
        delay = self.settings.database.connect_retry_first_seconds
        attempts = 0
        while not self.database.connected.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            if stop.is_set():
                return
            attempts += 1
            if await self.connect_once():
                log.info(
                    "storage.connected",
                    attempts=attempts,
                    unavailable_seconds=round(time.monotonic() - self._started, 1),
                )
                break
            delay = min(delay * 2, self.settings.database.connect_retry_max_seconds)
            log.warning(
                "storage.still_unavailable",
                attempts=attempts,
                error=self._last_error,
                retry_in_seconds=delay,
            )
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    stop.wait(), timeout=self.settings.database.ping_interval_seconds
                )
            if not stop.is_set():
                self._reachable(await self.database.store.ping())
