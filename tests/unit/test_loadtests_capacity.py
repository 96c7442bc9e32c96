"""The capacity script's seed plan: no two generators of a run share event ids."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import pytest

from loadtests.capacity import (
    MAX_PROCESSES,
    MAX_STEPS,
    _sources,
    build_parser,
    default_processes,
    join_command,
    main,
    step_seed,
)
from loadtests.credentials import load_credentials, make_sources, write_run_files
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


def test_option_combinations_are_refused_before_anything_starts(tmp_path: Path) -> None:
    """More workers in all than the seed plan holds, no worker at all, one CPU option
    without the other, overlapping CPU sets and wildcard addresses are usage errors (exit
    2) before a database or gateway is started (nothing is written under --out)."""
    out = tmp_path / "runs"
    bad = [
        ["--processes", "8", "--expect-remote-workers", str(MAX_PROCESSES - 7)],
        ["--processes", "0"],
        ["--gateway-cpus", "0"],
        ["--gateway-cpus", "0", "--generator-cpus", "0"],
        ["--gateway-cpus", "999", "--generator-cpus", "0"],
        ["--master-bind-host", "0.0.0.0", "--expect-remote-workers", "1"],
        ["--gateway-host", "*"],
    ]
    for arguments in bad:
        with pytest.raises(SystemExit) as exited:
            main([*arguments, "--out", str(out)])
        assert exited.value.code == 2, arguments
    assert not out.exists()


def test_the_join_command_carries_the_runs_traffic_profile_and_rejoins_every_step() -> None:
    """The line printed for remote machines sets every LOADTEST_* variable of the run (and
    nothing else from the environment), points a Locust worker at the master, and loops,
    because each step's master tells its workers to quit."""
    env = {
        "PATH": "/usr/bin",
        "LOADTEST_CREDENTIALS": "/tmp/run dir/credentials.json",
        "LOADTEST_BATCH_SIZE": "10",
    }
    command = join_command(env, "10.0.0.5", 5557)
    assert command.startswith("while ") and command.endswith("; do sleep 1; done")
    assert "LOADTEST_CREDENTIALS='/tmp/run dir/credentials.json'" in command
    assert "LOADTEST_BATCH_SIZE=10" in command and "PATH" not in command
    assert "locust -f loadtests/locustfile.py --worker --master-host 10.0.0.5" in command
    assert "--master-port 5557" in command


def test_prepared_credentials_are_reused_for_the_profiles_providers(tmp_path: Path) -> None:
    """--credentials reuses a prepared credentials.json (as copied to the load machines
    before the run): the run serves exactly its sources for the profile's providers, and a
    provider it has no source for is refused with the file named."""
    files = write_run_files(tmp_path, make_sources(["sendgrid", "mailgun"]))
    args = argparse.Namespace(credentials=files.credentials)
    (source,) = _sources(args, ["sendgrid"])
    assert source.spec == load_credentials(files.credentials)[0].spec
    with pytest.raises(RuntimeError, match="no source for ses"):
        _sources(args, ["sendgrid", "ses"])
    fresh = _sources(argparse.Namespace(credentials=None), ["mailgun"])
    assert [s.provider for s in fresh] == ["mailgun"]
    assert fresh[0].material != load_credentials(files.credentials)[1].material
