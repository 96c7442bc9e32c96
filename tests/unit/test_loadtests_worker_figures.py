"""What Locust workers report to their master: identity, requests, CPU (pure, no Locust run)."""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path

from loadtests.worker_figures import IDENTITY_KEY, WorkerLog, identify, read_workers


def test_a_worker_names_its_host_and_pid_in_its_report() -> None:
    """``identify`` adds this process's host name and pid under the agreed key, leaving
    Locust's own report fields alone."""
    data: dict[str, object] = {"stats_total": {"num_requests": 3}}
    identify(data)
    assert data[IDENTITY_KEY] == {"host": socket.gethostname(), "pid": os.getpid()}
    assert data["stats_total"] == {"num_requests": 3}


def test_the_master_sums_requests_and_keeps_cpu_only_while_the_users_run(tmp_path: Path) -> None:
    """Requests add up over a worker's reports (each carries those since the previous one);
    CPU samples count only while running and from the worker's first measurement on (Locust
    reports 0 until then); the file read back gives mean and peak as shares of a core,
    workers in Locust's index order, NaN for a worker with no sample."""
    log = WorkerLog()
    remote = {IDENTITY_KEY: {"host": "loadbox-2", "pid": 4242}}
    log.report("b", 1, {**remote, "stats_total": {"num_requests": 100}})
    log.report("b", 1, {**remote, "stats_total": {"num_requests": 50}})
    log.heartbeat("b", 1, 95.0, running=False)  # before the step: left out
    log.heartbeat("b", 1, 0.0, running=True)  # not measured yet: left out
    log.heartbeat("b", 1, 40.0, running=True)
    log.heartbeat("b", 1, 0.0, running=True)  # measured idle after a first figure: kept
    log.heartbeat("b", 1, 80.0, running=True)
    log.report("a", 0, {IDENTITY_KEY: {"host": "here", "pid": 7}})
    log.write(tmp_path / "workers.json")

    first, second = read_workers(tmp_path / "workers.json")
    assert (first.index, first.host, first.pid, first.requests) == (0, "here", 7, 0)
    assert math.isnan(first.cpu_mean) and first.cpu_samples == 0
    assert (second.index, second.host, second.pid, second.requests) == (1, "loadbox-2", 4242, 150)
    assert second.cpu_samples == 3
    assert math.isclose(second.cpu_mean, 0.4) and math.isclose(second.cpu_max, 0.8)
    assert second.is_among("loadbox-2", {4242}) and not second.is_among("here", {4242})


def test_no_file_means_no_workers(tmp_path: Path) -> None:
    """A single Locust process has no master and writes nothing: no workers, no error."""
    assert read_workers(tmp_path / "missing.json") == []
