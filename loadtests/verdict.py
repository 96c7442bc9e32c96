"""The capacity verdict: an objective, the knee, and which step to measure next (pure functions).

A step is *valid* when the load generator did not saturate during it: only valid steps can
say anything about the gateway. A valid step *meets* the objective when its p99 latency and
its error ratio are within bounds. The *knee* is the valid step with the highest throughput
that meets the objective. The search climbs (users x ``growth``) until a valid step fails the
objective or stops gaining throughput (the gateway is saturated), then refines between the knee
and the first measured step above it (bisection on users), and stops at once when the
generator saturates (more load from it would measure the generator, not the gateway).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_ERROR_RATIO",
    "DEFAULT_P99_MS",
    "GENERATOR_CPU_THRESHOLD",
    "Objective",
    "StepMeasure",
    "find_knee",
    "gateway_saturated",
    "generator_saturation",
    "next_users",
    "objective_from_slos",
]

#: ``ingest_latency``: 99 % of requests within 250 ms (grafana/slo/slos.yml)
DEFAULT_P99_MS = 250.0
#: ``ingest_availability``: 99.9 % of requests answered without the gateway's failure
DEFAULT_ERROR_RATIO = 0.001
#: a generator process busier than this share of one core is saturated (Locust warns at 0.9)
GENERATOR_CPU_THRESHOLD = 0.85
#: a step must beat the best lower step's throughput by this share, or the gateway has plateaued
MIN_GAIN = 0.05


@dataclass(frozen=True)
class Objective:
    """What a step must achieve to count as within capacity."""

    p99_ms: float = DEFAULT_P99_MS
    max_error_ratio: float = DEFAULT_ERROR_RATIO

    def describe(self) -> str:
        return f"p99 <= {self.p99_ms:g} ms and errors <= {self.max_error_ratio:.3%}"


@dataclass(frozen=True)
class StepMeasure:
    """What the verdict needs of one step."""

    users: int
    #: requests per second the generator measured
    throughput: float
    p99_ms: float
    error_ratio: float
    #: why the generator saturated, or None when it did not (the step is then valid)
    generator_saturated: str | None = None

    @property
    def valid(self) -> bool:
        return self.generator_saturated is None

    def meets(self, objective: Objective) -> bool:
        return (
            not math.isnan(self.p99_ms)
            and self.p99_ms <= objective.p99_ms
            and self.error_ratio <= objective.max_error_ratio
        )


def objective_from_slos(path: Path) -> Objective:
    """The objective implied by ``slos.yml``: ``ingest_latency`` (its ``le`` bucket and
    objective give the percentile's bound) and ``ingest_availability`` (its error budget).

    Only a p99 objective is supported; any other shape, or a missing file, gives the defaults.
    """
    import yaml

    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return Objective()
    slos = {slo.get("name"): slo for slo in (document or {}).get("slos", [])}
    p99_ms, error_ratio = DEFAULT_P99_MS, DEFAULT_ERROR_RATIO
    latency = slos.get("ingest_latency")
    if latency and float(latency.get("objective", 0)) == 99.0:
        match = re.search(r'le="([0-9.]+)"', str(latency.get("sli", {}).get("good", "")))
        if match:
            p99_ms = float(match.group(1)) * 1000.0
    availability = slos.get("ingest_availability")
    if availability and "objective" in availability:
        error_ratio = round(1.0 - float(availability["objective"]) / 100.0, 10)
    return Objective(p99_ms=p99_ms, max_error_ratio=error_ratio)


def generator_saturation(
    cpu_by_process: dict[str, float],
    locust_warnings: int,
    threshold: float = GENERATOR_CPU_THRESHOLD,
) -> str | None:
    """Why the generator saturated during a step, or None.

    ``cpu_by_process`` maps each Locust process to its average CPU share of one core over the
    step (a gevent process cannot use more than one); ``locust_warnings`` counts Locust's own
    CPU warnings in the step's log.
    """
    busy = sorted(name for name, share in cpu_by_process.items() if share >= threshold)
    reasons = []
    if busy:
        shares = ", ".join(f"{name} {cpu_by_process[name]:.0%}" for name in busy)
        reasons.append(f"CPU at or above {threshold:.0%} of a core: {shares}")
    if locust_warnings:
        reasons.append(f"Locust warned about its CPU {locust_warnings} time(s)")
    return "; ".join(reasons) or None


def find_knee(steps: Sequence[StepMeasure], objective: Objective) -> StepMeasure | None:
    """The valid step with the highest throughput that meets ``objective`` (None if none)."""
    passing = [step for step in steps if step.valid and step.meets(objective)]
    if not passing:
        return None
    return max(passing, key=lambda step: (step.throughput, -step.users))


def gateway_saturated(
    steps: Sequence[StepMeasure], objective: Objective, min_gain: float = MIN_GAIN
) -> bool:
    """True when some valid step shows the gateway past its limit: it fails ``objective``, or
    it has more users than a lower valid step yet less than ``1 + min_gain`` times that step's
    throughput (adding load no longer adds throughput)."""
    valid = [step for step in steps if step.valid]
    for step in valid:
        if not step.meets(objective):
            return True
        lower = [other.throughput for other in valid if other.users < step.users]
        if lower and step.throughput < max(lower) * (1.0 + min_gain):
            return True
    return False


def _refinements(steps: Sequence[StepMeasure]) -> int:
    """Steps measured below a user count already measured: the refinement phase's steps."""
    count, highest = 0, 0
    for step in steps:
        if step.users < highest:
            count += 1
        highest = max(highest, step.users)
    return count


def next_users(
    steps: Sequence[StepMeasure],
    objective: Objective,
    *,
    start: int,
    growth: float = 2.0,
    max_users: int = 1000,
    refine: int = 2,
    min_gain: float = MIN_GAIN,
) -> int | None:
    """The user count to measure next, or None when the search is over.

    Over when: the generator saturated on the last step; the climb reached ``max_users``
    without saturating the gateway; or ``refine`` refinement steps were measured (or the
    interval between the knee and the step above it has no user count left in it).
    """
    if not steps:
        return start
    if not steps[-1].valid:
        return None
    if not gateway_saturated(steps, objective, min_gain):
        highest = max(step.users for step in steps)
        if highest >= max_users:
            return None
        return min(max_users, max(highest + 1, math.ceil(highest * growth)))
    if _refinements(steps) >= refine:
        return None
    knee = find_knee(steps, objective)
    low = knee.users if knee else 0
    above = [step.users for step in steps if step.users > low]
    if not above:
        return None
    high = min(above)
    middle = (low + high) // 2
    measured = {step.users for step in steps}
    if middle <= low or middle in measured or middle < 1:
        return None
    return middle
