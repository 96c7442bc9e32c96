"""The deliverer interface: what the dispatcher needs from a sink, whatever carries it.

A sink kind (HTTP in ``sinks.py``, AMQP in ``amqp.py``) is one class that satisfies
``Deliverer``: a ``name`` (the ``sink`` label of every metric and the outbox rows' ``sink``),
a ``timeout`` (the longest one attempt may take; the dispatcher's claim lease is sized from
it), its ``breaker`` (the dispatcher claims no rows for a sink whose breaker is open),
``deliver`` (one claimed row in, what to write back out; it never raises) and ``close``.

The part every kind shares is ``AttemptGuard``: it admits an attempt through the breaker's
single-probe gate, runs it inside the breaker (only failures that say the sink is unwell
count), and turns what the attempt ``Observed`` into a ``RowResult`` with the sink's
``RetryPolicy`` (success, retry with backoff and jitter, permanent failure or dead-lettered
once the attempts are used up), counting ``hookline_delivery_attempts_total``. So a new kind
(Kafka, SQS, ...) is one module: it encodes the row for its transport, makes one attempt,
and says what it observed: the verdict, an error text for the row's history and the DLQ, and
whether the failure should count against the breaker.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from gateway.clock import Clock
from gateway.delivery.breaker import ProbeGate
from gateway.delivery.models import Attempt, ClaimedRow, Outcome, RowResult
from gateway.delivery.retry import RetryPolicy, Verdict
from gateway.resilience import AsyncCircuitBreaker, CircuitOpenError
from observability.metrics import Metrics

__all__ = ["AttemptGuard", "Deliverer", "Observed"]

log = structlog.get_logger("hookline.delivery")


class Deliverer(Protocol):
    """One sink as the dispatcher sees it (see the module docstring)."""

    name: str
    timeout: float
    breaker: AsyncCircuitBreaker

    async def deliver(self, row: ClaimedRow) -> RowResult:
        """Attempt ``row`` (or defer it while the breaker is open); never raises."""
        ...

    async def close(self) -> None:
        """Release connections at shutdown."""
        ...


@dataclass(frozen=True, slots=True)
class Observed:
    """What one attempt saw."""

    verdict: Verdict
    #: the HTTP status (None for other transports, timeouts and connection errors)
    status: int | None
    #: why it failed, kept in the row's history and the DLQ entry (no secrets)
    error: str | None
    #: counts as a failure for the sink's circuit breaker
    breaker_failure: bool
    #: seconds the sink asked us to wait (HTTP Retry-After)
    retry_after: float | None = None
    #: seconds the attempt took
    duration: float = 0.0


class _BreakerFailure(Exception):
    """Raised inside the breaker call so pybreaker counts the attempt as failed."""


class AttemptGuard:
    """Breaker admission, the breaker call and the retry policy, shared by every kind."""

    def __init__(
        self,
        name: str,
        *,
        breaker: AsyncCircuitBreaker,
        policy: RetryPolicy,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self.name = name
        self.breaker = breaker
        self.gate = ProbeGate(breaker)
        self.policy = policy
        self.metrics = metrics
        self.clock = clock

    async def run(
        self,
        row: ClaimedRow,
        attempt: Callable[[ClaimedRow, datetime], Awaitable[Observed | None]],
    ) -> RowResult:
        """Admit, make ``attempt`` (which returns None when the breaker refused the call)
        and classify what it observed."""
        admission = self.gate.admit()
        if not admission.allowed:
            return self.deferred(row, admission.wait)
        started_at = self.clock.now()
        try:
            observed = await attempt(row, started_at)
        finally:
            self.gate.done(admission)
        if observed is None:  # the breaker refused the call (opened meanwhile)
            return self.deferred(row, max(self.breaker.seconds_until_retry(), 0.001))
        attempts = row.attempts + 1
        made = Attempt(
            attempts, started_at, observed.status, observed.error, observed.duration * 1000
        )
        now = self.clock.now()
        if observed.verdict is Verdict.SUCCESS:
            result = RowResult(row, Outcome.SUCCESS, made)
        elif observed.verdict is Verdict.PERMANENT:
            result = RowResult(row, Outcome.PERMANENT_FAILURE, made)
        elif self.policy.exhausted(attempts):
            result = RowResult(row, Outcome.DEAD_LETTERED, made)
        else:
            delay = self.policy.delay(attempts, observed.retry_after)
            result = RowResult(row, Outcome.RETRY, made, now + timedelta(seconds=delay))
            log.debug(
                "delivery.retry_scheduled",
                sink=self.name,
                attempt=attempts,
                delay_seconds=round(delay, 3),
                error=observed.error,
            )
        self.metrics.delivery_attempts.labels(self.name, result.outcome.value).inc()
        return result

    def deferred(self, row: ClaimedRow, wait: float) -> RowResult:
        """The row is not attempted now (breaker open): due again in ``wait`` seconds."""
        self.metrics.delivery_attempts.labels(self.name, Outcome.BREAKER_OPEN.value).inc()
        due_at = self.clock.now() + timedelta(seconds=wait)
        return RowResult(row, Outcome.BREAKER_OPEN, None, due_at)

    async def call(self, send: Callable[[], Awaitable[Observed]]) -> Observed | None:
        """Run ``send`` through the breaker; None when the breaker refused it."""
        observed: Observed | None = None

        async def guarded() -> None:
            nonlocal observed
            observed = await send()
            if observed.breaker_failure:
                raise _BreakerFailure(observed.error)

        with contextlib.suppress(_BreakerFailure, CircuitOpenError):
            await self.breaker.call(guarded)
        return observed
