"""The capacity script's seed plan: no two generators of a run share event ids."""

from __future__ import annotations

import itertools

import pytest

from loadtests.capacity import (
    MAX_PROCESSES,
    MAX_STEPS,
    build_parser,
    default_processes,
    step_seed,
)
from loadtests.traffic import SEED_SPACE, SEEDS_PER_WORKER


def test_every_worker_of_every_step_gets_its_own_seed_range() -> None:
    """At the largest run allowed (8 steps x 12 processes), the seed ranges of all workers
    (each step's seed plus the worker's offset, as the Locust file computes it) are
    disjoint and inside the seed space, so fresh events never collide into duplicates."""
    ranges = []
    for step in range(1, MAX_STEPS + 1):
        seed = step_seed(step, MAX_PROCESSES)
        for worker in range(MAX_PROCESSES):
            start = seed + worker * SEEDS_PER_WORKER
            ranges.append((start, start + SEEDS_PER_WORKER))
    ranges.sort()
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(ranges))
    assert ranges[-1][1] <= SEED_SPACE
    with pytest.raises(ValueError):
        step_seed(MAX_STEPS + 1, MAX_PROCESSES + 1)


def test_more_processes_than_the_seed_plan_allows_are_refused() -> None:
    """--processes above the bound is a usage error, before anything starts."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--processes", str(MAX_PROCESSES + 1)])


def test_the_default_process_count_is_half_the_cpus_within_the_seed_plan() -> None:
    """Half the CPUs, at least one, and never more than the seed plan allows (a 64-CPU
    machine must not default to a count that fails at the first step)."""
    assert [default_processes(cpus) for cpus in (1, 2, 8, 64)] == [1, 1, 4, MAX_PROCESSES]
