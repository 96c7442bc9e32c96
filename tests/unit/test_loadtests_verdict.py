"""The capacity verdict: objective, knee, gateway and generator saturation, the step planner."""

from __future__ import annotations

import math
from pathlib import Path

from loadtests.verdict import (
    Objective,
    StepMeasure,
    find_knee,
    gateway_saturated,
    generator_saturation,
    next_users,
    objective_from_slos,
)

ROOT = Path(__file__).resolve().parents[2]
OBJ = Objective(p99_ms=250.0, max_error_ratio=0.001)


def step(
    users: int, rps: float, p99: float = 50.0, errors: float = 0.0, gen: str | None = None
) -> StepMeasure:
    return StepMeasure(users, rps, p99, errors, gen)


def test_objective_defaults_come_from_the_projects_slos() -> None:
    """slos.yml's ingest_latency (99 % within le=0.25) and ingest_availability (99.9 %) give
    p99 <= 250 ms and at most 0.1 % errors."""
    objective = objective_from_slos(ROOT / "grafana" / "slo" / "slos.yml")
    assert objective == Objective(p99_ms=250.0, max_error_ratio=0.001)


def test_a_step_meets_the_objective_only_within_both_bounds() -> None:
    """Latency above the bound, errors above the bound, or no latency at all fail."""
    assert step(10, 100, p99=250).meets(OBJ)
    assert not step(10, 100, p99=251).meets(OBJ)
    assert not step(10, 100, errors=0.002).meets(OBJ)
    assert not step(10, 100, p99=math.nan).meets(OBJ)


def test_the_knee_is_the_highest_passing_throughput_of_valid_steps() -> None:
    """A faster step that breaks the objective, or whose generator saturated, is not the
    knee; the highest-throughput passing valid step is."""
    steps = [
        step(10, 500),
        step(20, 900),
        step(40, 1100, p99=400),  # past the objective
        step(30, 1300, gen="CPU"),  # generator-bound: says nothing about the gateway
        step(25, 950),
    ]
    knee = find_knee(steps, OBJ)
    assert knee is not None and knee.users == 25
    assert find_knee([step(10, 500, p99=900)], OBJ) is None


def test_gateway_saturation_is_a_failed_objective_or_a_throughput_plateau() -> None:
    """Doubling users for under 5 % more throughput, or breaking the objective, is
    saturation; a steady climb is not; generator-bound steps are ignored."""
    assert not gateway_saturated([step(10, 500), step(20, 900)], OBJ)
    assert gateway_saturated([step(10, 500), step(20, 520)], OBJ)
    assert gateway_saturated([step(10, 500), step(20, 900, errors=0.01)], OBJ)
    assert not gateway_saturated([step(10, 500), step(20, 300, gen="CPU")], OBJ)


def test_generator_saturation_from_cpu_or_locust_warnings() -> None:
    """A Locust process at or above the threshold, or Locust's own CPU warning, marks the
    step invalid and says why; a quiet generator does not."""
    assert generator_saturation({"master": 0.1, "worker 1": 0.5}, 0) is None
    reason = generator_saturation({"master": 0.1, "worker 1": 0.93}, 0)
    assert reason is not None and "worker 1 93%" in reason
    reason = generator_saturation({"worker 1": 0.2}, 1)
    assert reason is not None and "warned" in reason


def test_the_planner_climbs_then_bisects_around_the_knee_then_stops() -> None:
    """Start, x2 while the gateway keeps up, then bisect between the knee and the first step
    above it for ``refine`` steps, then stop."""
    steps: list[StepMeasure] = []

    def plan(steps: list[StepMeasure]) -> int | None:
        return next_users(steps, OBJ, start=10, growth=2.0, max_users=1000, refine=2)

    assert plan(steps) == 10
    steps.append(step(10, 500))
    assert plan(steps) == 20
    steps.append(step(20, 900))
    assert plan(steps) == 40
    steps.append(step(40, 910, p99=400))  # saturated: refine between 20 and 40
    assert plan(steps) == 30
    steps.append(step(30, 950))  # passes: the knee moves up, refine between 30 and 40
    assert plan(steps) == 35
    steps.append(step(35, 940, p99=300))
    assert plan(steps) is None  # two refinements done


def test_the_planner_stops_when_the_generator_saturates_or_at_max_users() -> None:
    """A generator-bound step ends the search (more load would measure the generator);
    so does reaching max_users without saturating the gateway."""
    assert next_users([step(10, 500), step(20, 990, gen="CPU")], OBJ, start=10) is None
    assert next_users([step(10, 500), step(20, 990)], OBJ, start=10, max_users=20) is None
    assert next_users([step(10, 500)], OBJ, start=10, max_users=15) == 15
