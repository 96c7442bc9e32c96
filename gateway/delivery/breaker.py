"""One circuit breaker per sink (``sink:<name>``), on the dispatcher's clock, with a
single half-open probe.

``AsyncCircuitBreaker`` (pybreaker underneath) measures its reset timeout with the wall
clock. ``sink_breaker`` gives it a pybreaker state storage whose ``opened_at`` is kept on the
injected clock (and translated to wall time when pybreaker reads it), so tests can open a
breaker, move the clock past ``reset_timeout`` and watch the half-open probe without sleeping.
With the system clock the behaviour is pybreaker's own.

pybreaker lets every call through while half-open; ``ProbeGate`` lets exactly one through
(the probe) and makes the others wait for its verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pybreaker

from gateway.clock import Clock, SystemClock
from gateway.resilience import AsyncCircuitBreaker
from observability.metrics import Metrics

__all__ = ["Admission", "ProbeGate", "sink_breaker"]


class _ClockStorage(pybreaker.CircuitMemoryStorage):
    """Memory storage whose ``opened_at`` follows ``clock`` rather than the wall clock."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(pybreaker.STATE_CLOSED)
        self._clock = clock
        self._opened_on_clock: datetime | None = None

    @property
    def opened_at(self) -> datetime | None:
        if self._opened_on_clock is None:
            return None
        elapsed = self._clock.now() - self._opened_on_clock
        return datetime.now(UTC) - elapsed

    @opened_at.setter
    def opened_at(self, _wall_time: datetime) -> None:
        self._opened_on_clock = self._clock.now()


def sink_breaker(
    name: str,
    metrics: Metrics,
    *,
    fail_max: int,
    reset_timeout: float,
    clock: Clock,
) -> AsyncCircuitBreaker:
    """The breaker of sink ``name`` (exported as ``hookline_circuit_breaker_state``
    ``{breaker="sink:<name>"}``)."""
    return AsyncCircuitBreaker(
        f"sink:{name}",
        metrics,
        fail_max=fail_max,
        reset_timeout=reset_timeout,
        state_storage=None if isinstance(clock, SystemClock) else _ClockStorage(clock),
    )


@dataclass(frozen=True, slots=True)
class Admission:
    """``allowed``: attempt now (``probe``: as the half-open trial); else wait ``wait``."""

    allowed: bool
    probe: bool = False
    wait: float = 0.0


class ProbeGate:
    """Decides, before an attempt, whether a sink may be called now."""

    def __init__(self, breaker: AsyncCircuitBreaker) -> None:
        self.breaker = breaker
        self._probing = False

    def admit(self) -> Admission:
        """May an attempt start now? A probe must be handed back with ``done``."""
        if not self.breaker.allows_call():
            return Admission(False, wait=max(self.breaker.seconds_until_retry(), 0.001))
        if self.breaker.state == "closed":
            return Admission(True)
        if self._probing:
            return Admission(False, wait=min(self.breaker.reset_timeout, 1.0))
        self._probing = True
        return Admission(True, probe=True)

    def done(self, admission: Admission) -> None:
        if admission.probe:
            self._probing = False
