"""What Locust workers report to their master: identity, requests, CPU (no Locust run)."""

from __future__ import annotations

import math
import os
import socket
import time
from pathlib import Path

from loadtests.worker_figures import IDENTITY_KEY, WorkerClock, WorkerLog, read_workers


def test_a_worker_names_itself_and_once_started_reports_the_cpu_it_used() -> None:
    """Before its users start a worker sends only host and pid; afterwards also the wall and
    CPU seconds since the start, measured on this very process (a busy loop shows up as CPU
    close to its wall time, never more than the wall time of this one thread)."""
    clock = WorkerClock()
    data: dict[str, object] = {"stats_total": {"num_requests": 3}}
    clock.identify(data)
    assert data[IDENTITY_KEY] == {"host": socket.gethostname(), "pid": os.getpid()}
    assert data["stats_total"] == {"num_requests": 3}

    clock.start()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn 0.2 s of CPU
        pass
    clock.identify(data)
    identity = data[IDENTITY_KEY]
    assert isinstance(identity, dict)
    assert identity["cpu_seconds"] >= 0.2
    assert identity["seconds"] >= identity["cpu_seconds"] - 0.05


def test_the_master_sums_requests_and_keeps_each_workers_latest_cpu_figure(
    tmp_path: Path,
) -> None:
    """Requests add up over a worker's reports (each carries those since the previous one);
    the CPU share is the latest (longest) figure's CPU over wall seconds, even when reports
    arrive out of order; a worker that never started, or ran under a second, has no share;
    the peak of Locust's own heartbeat figure is kept beside it (none while Locust reads 0).
    Read back in Locust's index order."""
    log = WorkerLog()
    identity = {"host": "loadbox-2", "pid": 4242}
    log.report("b", 1, {IDENTITY_KEY: identity, "stats_total": {"num_requests": 100}})
    log.report(
        "b", 1, {IDENTITY_KEY: {**identity, "seconds": 9.0, "cpu_seconds": 4.5},
                 "stats_total": {"num_requests": 50}},
    )  # fmt: skip
    log.report("b", 1, {IDENTITY_KEY: {**identity, "seconds": 6.0, "cpu_seconds": 1.0}})
    log.report("a", 0, {IDENTITY_KEY: {"host": "here", "pid": 7}})
    for percent in (0.0, 35.0, 20.0):  # Locust's own figure: the peak is kept
        log.heartbeat("b", 1, percent)
    log.heartbeat("a", 0, 0.0)  # Locust had no figure yet
    short = {"host": "here", "pid": 8, "seconds": 0.5, "cpu_seconds": 0.5}
    log.report("c", 2, {IDENTITY_KEY: short})
    log.write(tmp_path / "workers.json")

    first, second, third = read_workers(tmp_path / "workers.json")
    assert (first.index, first.host, first.pid, first.requests) == (0, "here", 7, 0)
    assert math.isnan(first.cpu_share) and math.isnan(first.locust_cpu_peak)
    assert (second.index, second.host, second.pid, second.requests) == (1, "loadbox-2", 4242, 150)
    assert math.isclose(second.cpu_share, 0.5) and second.cpu_over_seconds == 9.0
    assert math.isclose(second.locust_cpu_peak, 0.35)
    assert math.isnan(third.cpu_share)
    assert second.is_among("loadbox-2", {4242}) and not second.is_among("here", {4242})


def test_no_file_means_no_workers(tmp_path: Path) -> None:
    """A single Locust process has no master and writes nothing: no workers, no error."""
    assert read_workers(tmp_path / "missing.json") == []
