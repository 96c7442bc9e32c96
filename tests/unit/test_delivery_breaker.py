"""The per-sink breaker on an injected clock, and the single half-open probe."""

from __future__ import annotations

import pytest

from gateway.clock import ManualClock
from gateway.delivery.breaker import ProbeGate, sink_breaker
from gateway.resilience import AsyncCircuitBreaker, CircuitOpenError
from observability.metrics import Metrics


class Boom(Exception):
    pass


async def fail() -> None:
    raise Boom


async def ok() -> str:
    return "ok"


async def trip(breaker: AsyncCircuitBreaker, times: int) -> None:
    """Fail ``times`` calls (the tripping one raises CircuitOpenError instead of Boom)."""
    for _ in range(times):
        with pytest.raises((Boom, CircuitOpenError)):
            await breaker.call(fail)


async def test_reset_timeout_follows_the_injected_clock() -> None:
    """Opened at t, the breaker refuses calls until t + reset_timeout on the manual clock,
    then lets one probe through; success closes it. Metrics follow each transition."""
    clock = ManualClock()
    metrics = Metrics()
    breaker = sink_breaker("crm", metrics, fail_max=2, reset_timeout=30, clock=clock)
    await trip(breaker, 2)
    assert breaker.state == "open"
    assert not breaker.allows_call()
    assert breaker.seconds_until_retry() == pytest.approx(30, abs=0.5)
    clock.advance(29)
    assert not breaker.allows_call()
    assert breaker.seconds_until_retry() == pytest.approx(1, abs=0.5)
    clock.advance(1)
    assert breaker.allows_call()
    assert await breaker.call(ok) == "ok"
    assert breaker.state == "closed"
    sample = metrics.registry.get_sample_value
    for state in ("open", "half-open", "closed"):
        assert (
            sample(
                "hookline_circuit_breaker_transitions_total",
                {"breaker": "sink:crm", "to_state": state},
            )
            == 1
        )
    assert sample("hookline_circuit_breaker_state", {"breaker": "sink:crm"}) == 0


async def test_probe_gate_admits_one_probe_at_a_time() -> None:
    """Closed: everyone. Open: nobody, told how long to wait. After the timeout: exactly
    one probe until it is done."""
    clock = ManualClock()
    breaker = sink_breaker("crm", Metrics(), fail_max=1, reset_timeout=10, clock=clock)
    gate = ProbeGate(breaker)
    first, second = gate.admit(), gate.admit()
    assert first.allowed and second.allowed and not first.probe
    gate.done(first)
    await trip(breaker, 1)
    refused = gate.admit()
    assert refused.allowed is False and refused.wait == pytest.approx(10, abs=0.5)
    clock.advance(10)
    probe = gate.admit()
    assert probe.allowed and probe.probe
    waiting = gate.admit()
    assert waiting.allowed is False and waiting.wait == 1.0
    gate.done(second)  # a non-probe finishing does not release the probe slot
    assert not gate.admit().allowed
    gate.done(probe)
    assert gate.admit().probe


async def test_a_breaker_on_the_wall_clock_knows_when_it_opened() -> None:
    """Without an injected clock the breaker reads when it opened from the state storage it
    handed pybreaker (no private attribute): open, it refuses calls and waits at most its
    reset timeout."""
    breaker = AsyncCircuitBreaker("storage", Metrics(), fail_max=1, reset_timeout=3600)
    await trip(breaker, 1)
    assert breaker.state == "open"
    assert not breaker.allows_call()
    assert 3500 < breaker.seconds_until_retry() <= 3600


async def test_a_short_reset_timeout_is_the_wait_and_a_closed_breaker_has_none() -> None:
    """A breaker that never opened has no time until retry. Opened with a reset timeout
    under a second, the gate tells callers to wait that long, not a rounded-up second
    (the 1 ms floor only keeps a refusal's wait above zero)."""
    clock = ManualClock()
    breaker = sink_breaker("crm", Metrics(), fail_max=1, reset_timeout=0.5, clock=clock)
    assert breaker.seconds_until_retry() == 0.0
    gate = ProbeGate(breaker)
    await trip(breaker, 1)
    refused = gate.admit()
    assert refused.allowed is False and refused.wait == pytest.approx(0.5, abs=0.2)
