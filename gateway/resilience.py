"""Circuit breakers (pybreaker) for asyncio code, wired to metrics and logs.

pybreaker's own ``call_async`` needs Tornado. Its ``calling()`` context manager, however, is
a generator-based wrapper whose success/failure bookkeeping runs when the ``with`` block
exits, so wrapping an ``await`` in it gives correct breaker semantics on the event loop
(single-threaded, so the breaker's lock is never contended across awaits).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pybreaker
import structlog

from observability.metrics import BREAKER_STATES, Metrics

__all__ = ["AsyncCircuitBreaker", "CircuitOpenError"]

T = TypeVar("T")
log = structlog.get_logger("hookline.breaker")

CircuitOpenError = pybreaker.CircuitBreakerError


class _MetricsListener(pybreaker.CircuitBreakerListener):
    def __init__(self, name: str, metrics: Metrics) -> None:
        self.name = name
        self.metrics = metrics

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        to_state = str(new_state.name)
        self.metrics.breaker_state.labels(self.name).set(BREAKER_STATES.get(to_state, 0))
        self.metrics.breaker_transitions.labels(self.name, to_state).inc()
        log.warning(
            "breaker.state_changed",
            breaker=self.name,
            from_state=str(old_state.name) if old_state is not None else None,
            to_state=to_state,
        )


class AsyncCircuitBreaker:
    """A named breaker: ``await breaker.call(fn, ...)`` raises ``CircuitOpenError`` when open."""

    def __init__(
        self,
        name: str,
        metrics: Metrics,
        *,
        fail_max: int,
        reset_timeout: float,
        exclude: tuple[type[BaseException] | Callable[[BaseException], bool], ...] = (),
        state_storage: pybreaker.CircuitBreakerStorage | None = None,
    ) -> None:
        self.name = name
        #: kept here, not read back from the breaker: when it opened is asked of the
        #: storage's public ``opened_at`` (pybreaker has no public accessor for its storage)
        self._storage = state_storage or pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            exclude=list(exclude),
            listeners=[_MetricsListener(name, metrics)],
            state_storage=self._storage,
            name=name,
        )
        metrics.breaker_state.labels(name).set(0)

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        return str(self._breaker.current_state)

    @property
    def reset_timeout(self) -> float:
        return float(self._breaker.reset_timeout)

    def allows_call(self) -> bool:
        """False while open and the reset timeout has not elapsed (no trial call yet)."""
        if self.state != "open":
            return True
        opened_at = self._storage.opened_at
        return bool(
            opened_at is None
            or datetime.now(UTC) >= opened_at + timedelta(seconds=self._breaker.reset_timeout)
        )

    def seconds_until_retry(self) -> float:
        opened_at = self._storage.opened_at
        if self.state != "open" or opened_at is None:
            return 0.0
        elapsed = (datetime.now(UTC) - opened_at).total_seconds()
        return max(0.0, float(self._breaker.reset_timeout) - elapsed)

    async def call(self, func: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        with self._breaker.calling():
            return await func(*args, **kwargs)

    def record_failure(self, exc: BaseException) -> None:
        """Count a failure observed outside ``call`` (e.g. a timeout measured elsewhere)."""

        def _raise() -> None:
            raise exc

        with contextlib.suppress(BaseException):  # the point is only to count it
            self._breaker.call(_raise)

    def open(self) -> None:
        self._breaker.open()

    def close(self) -> None:
        self._breaker.close()
