"""Delivery assembled from settings: every delivery component of one process.

The app factory (``gateway/app.py``) builds one ``DeliveryService``, registers its outbox
``writer`` as a write hook in every process (events written by this process get their outbox
rows), and, when the process runs workers (``hookline serve`` by default, ``hookline
worker``), runs its ``background_tasks``: the dispatcher loops, the LISTEN wake-up, the
gauges refresher and housekeeping. The admin API receives its ``dlq``, ``replay_jobs`` and
``suppression_list`` through dependency injection.
"""

from __future__ import annotations

import asyncio
import contextlib
import random as _random
from collections.abc import Callable

import asyncpg
import httpx
import structlog
from opentelemetry.trace import Tracer

from gateway.clock import Clock, SystemClock
from gateway.delivery.breaker import sink_breaker
from gateway.delivery.bulk_replays import BulkReplays
from gateway.delivery.dispatcher import Dispatcher
from gateway.delivery.dlq import DeadLetterQueue
from gateway.delivery.gauges import GaugeRefresher
from gateway.delivery.listener import OutboxListener
from gateway.delivery.outbox import OutboxWriter
from gateway.delivery.processors.amqp import AmqpDeliverer
from gateway.delivery.processors.base import Deliverer
from gateway.delivery.processors.sinks import SinkDeliverer
from gateway.delivery.processors.suppressions import SuppressionProcessor
from gateway.delivery.queue import OutboxQueue
from gateway.delivery.replay_jobs import ReplayJobs
from gateway.delivery.retry import RetryPolicy
from gateway.delivery.suppression_list import SuppressionList
from gateway.periodic import BackgroundTask
from gateway.resilience import AsyncCircuitBreaker
from gateway.settings import Settings
from gateway.storage.errors import DB_ERRORS
from observability.metrics import Metrics

__all__ = ["DeliveryService"]

log = structlog.get_logger("hookline.delivery")


class DeliveryService:
    """Every delivery component for one process, built from the settings."""

    def __init__(
        self,
        settings: Settings,
        *,
        pool: asyncpg.Pool,
        http: httpx.AsyncClient,
        metrics: Metrics,
        tracer: Tracer,
        database_url: str,
        clock: Clock | None = None,
        random: Callable[[], float] = _random.random,
        batch_size: int | None = None,
        concurrency: int | None = None,
        lease_seconds: float | None = None,
        exports_gauges: bool = True,
    ) -> None:
        self.settings = settings
        #: this process runs the workers, so it exports the delivery gauges (replicas that
        #: do not would double-count them)
        self.exports_gauges = exports_gauges
        self.clock: Clock = clock or SystemClock()
        self.metrics = metrics
        self.writer = OutboxWriter(settings.sinks)
        self.queue = OutboxQueue(pool)
        self.breakers: dict[str, AsyncCircuitBreaker] = {}
        sinks: list[Deliverer] = []
        for sink in settings.sinks:
            breaker = sink_breaker(
                sink.name,
                metrics,
                fail_max=sink.breaker_fail_max,
                reset_timeout=sink.breaker_reset_seconds,
                clock=self.clock,
            )
            self.breakers[sink.name] = breaker
            policy = RetryPolicy(
                max_attempts=sink.max_attempts,
                base_seconds=sink.backoff_base_seconds,
                cap_seconds=sink.backoff_cap_seconds,
                retry_after_max_seconds=sink.retry_after_max_seconds,
                random=random,
            )
            if sink.kind == "amqp":
                sinks.append(
                    AmqpDeliverer(
                        sink,
                        breaker=breaker,
                        policy=policy,
                        metrics=metrics,
                        tracer=tracer,
                        clock=self.clock,
                    )
                )
                continue
            sinks.append(
                SinkDeliverer(
                    sink,
                    http=http,
                    breaker=breaker,
                    policy=policy,
                    metrics=metrics,
                    tracer=tracer,
                    clock=self.clock,
                )
            )
            if sink.secret is None:
                log.warning("delivery.unsigned_sink", sink=sink.name)
        self.deliverers = sinks
        self.suppressions = SuppressionProcessor(pool, settings.suppressions, metrics, self.clock)
        self.gauges = GaugeRefresher(
            pool,
            metrics,
            [s.name for s in settings.sinks],
            self.clock,
            interval_seconds=settings.delivery.gauges_interval_seconds,
        )
        self.dispatcher = Dispatcher(
            self.queue,
            sinks=sinks,
            suppressions=self.suppressions,
            metrics=metrics,
            clock=self.clock,
            batch_size=batch_size or settings.delivery.batch_size,
            concurrency=concurrency or settings.delivery.concurrency,
            lease_seconds=lease_seconds,
            on_dead_letter=self._dead_lettered,
        )
        self.listener = OutboxListener(database_url, self.dispatcher.wake)
        self.dlq = DeadLetterQueue(pool, self.clock)
        self.replay_jobs = ReplayJobs(pool)
        self.bulk_replays = BulkReplays(self.dlq, self.replay_jobs, self.refresh_gauges)
        self.suppression_list = SuppressionList(pool, metrics, self.clock)

    def background_tasks(self) -> list[tuple[str, BackgroundTask]]:
        """The workers of a process that runs them (see ``gateway/app.py``)."""
        tasks: list[tuple[str, BackgroundTask]] = [
            (f"delivery-dispatcher-{index}", self.dispatcher.run)
            for index in range(self.settings.delivery.dispatcher_loops)
        ]
        tasks += [
            ("delivery-listener", self.listener.run),
            ("delivery-gauges", self.gauges.run),
            ("delivery-housekeeping", self.housekeeping),
        ]
        return tasks

    def sink_configured(self, sink: str) -> bool:
        return any(s.name == sink for s in self.settings.sinks)

    async def refresh_gauges(self) -> None:
        """Refresh the delivery gauges now (after an admin change), where this process exports
        them."""
        if self.exports_gauges:
            await self._dead_lettered()

    async def close(self) -> None:
        """Close the sinks' own connections (AMQP); the HTTP client is the runtime's."""
        for deliverer in self.deliverers:
            await deliverer.close()

    async def _dead_lettered(self) -> None:
        """Keep the DLQ gauge current as soon as something is dead-lettered."""
        with contextlib.suppress(OSError, TimeoutError, asyncpg.PostgresError):
            await self.gauges.refresh()

    async def housekeeping(self, stop: asyncio.Event) -> None:
        """Periodically forget soft bounces that left the counting window."""
        while not stop.is_set():
            try:
                pruned = await self.suppressions.prune()
                if pruned:
                    log.info("suppressions.soft_bounces_pruned", rows=pruned)
            except DB_ERRORS as exc:
                log.warning("suppressions.prune_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    stop.wait(), timeout=self.settings.delivery.housekeeping_interval_seconds
                )
