"""Short, real capacity runs: embedded PostgreSQL, a gateway, Locust with worker processes
(forked, or started apart as a remote machine starts them).

The machinery is checked (a report, its CSVs, the truth check, the generator watched, the
database directory removed), never the figures: this machine is shared and its throughput
means nothing here. Two steps of 3 s and 2-3 users keep it short.
"""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from handlers.registry import available_providers

ROOT = Path(__file__).resolve().parents[2]


async def test_a_two_step_capacity_run_writes_a_report_whose_truth_check_passes(
    tmp_path: Path,
) -> None:
    """``python -m loadtests.capacity --steps 2,3`` exits 0; its run directory holds
    report.md (knee marked, truth check passed, HPA advice), its two charts, steps.csv (two
    valid steps, every acknowledged event stored), providers.csv (every provider, each
    step), generator.csv (the master and both Locust workers watched), Locust's per-step
    history CSVs and the logs; the PostgreSQL directory is gone."""
    out = tmp_path / "runs"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests.capacity",
        "--steps", "2,3", "--step-seconds", "3", "--processes", "2", "--out", str(out),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=280)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-4000:]

    (run,) = list(out.iterdir())
    report = (run / "report.md").read_text()
    assert "**Knee:" in report and "**knee**" in report
    assert "every acknowledged event was found in PostgreSQL" in report
    assert "targetAverageValue" in report

    with (run / "steps.csv").open() as handle:
        steps = list(csv.DictReader(handle))
    assert [row["users"] for row in steps] == ["2", "3"]
    assert all(row["truth_ok"] == "True" and row["events_missing"] == "0" for row in steps)
    assert all(int(row["events_stored"]) > 0 for row in steps)
    assert sum(row["knee"] == "True" for row in steps) == 1

    with (run / "providers.csv").open() as handle:
        providers = list(csv.DictReader(handle))
    assert sorted({row["provider"] for row in providers}) == sorted(available_providers())
    assert len(providers) == 2 * len(available_providers())

    with (run / "generator.csv").open() as handle:
        processes = {(row["step"], row["process"]) for row in csv.DictReader(handle)}
    assert processes == {
        (step, name) for step in ("1", "2") for name in ("master", "worker 1", "worker 2")
    }

    assert (run / "locust" / "step2_stats_history.csv").stat().st_size > 0
    assert (run / "capacity.svg").read_text().startswith("<svg")
    assert "step 2: 3 users" in (run / "timeline.svg").read_text()
    assert (run / "logs" / "gateway.log").exists()
    (removed,) = [line for line in text.splitlines() if "database directory removed" in line]
    database_directory = Path(removed.rsplit(": ", 1)[1])
    assert database_directory.name.startswith("hookline-capacity-")
    assert not database_directory.exists(), "the database directory is removed by default"


def test_a_remote_worker_joins_every_step_and_the_gateway_runs_on_its_own_core(
    tmp_path: Path,
) -> None:
    """``--expect-remote-workers 1`` prints a ``join:`` line; run as printed by a separate
    process (as a remote machine would, pointed at 127.0.0.1), that worker joins both steps:
    workers.csv has, per step, one remote worker whose requests were counted and whose CPU
    (measured by itself, reported through Locust) is known, beside this machine's worker;
    the report's workers table and generator check show it, and every acknowledged event is
    stored (its seeds did not collide with the local worker's). The same run pins the
    gateway to CPU 0 and the rest to CPU 1 (--gateway-cpus/--generator-cpus), and the report
    says so from /proc."""
    out = tmp_path / "runs"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        master_port = sock.getsockname()[1]
    capacity = subprocess.Popen(
        [
            sys.executable, "-m", "loadtests.capacity",
            "--steps", "2,3", "--step-seconds", "8", "--processes", "1",
            "--expect-remote-workers", "1", "--master-bind-port", str(master_port),
            "--remote-wait-seconds", "120",
            "--gateway-cpus", "0", "--generator-cpus", "1",
            "--out", str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    assert capacity.stdout is not None
    lines: list[str] = []
    remote: subprocess.Popen[bytes] | None = None
    try:
        for line in capacity.stdout:
            lines.append(line)
            if line.startswith("join: ") and remote is None:
                remote = subprocess.Popen(
                    ["bash", "-c", line.removeprefix("join: ").strip()],
                    cwd=ROOT,
                    stdout=(tmp_path / "remote.log").open("wb"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        code = capacity.wait(timeout=280)
    finally:
        if capacity.poll() is None:
            capacity.kill()
            capacity.wait()
        if remote is not None:
            os.killpg(remote.pid, signal.SIGKILL)
            remote.wait()
    text = "".join(lines)
    assert remote is not None, text[-4000:]
    assert code == 0, text[-4000:]

    (run,) = list(out.iterdir())
    with (run / "workers.csv").open() as handle:
        workers = list(csv.DictReader(handle))
    for step in ("1", "2"):
        (far,) = [w for w in workers if w["step"] == step and w["remote"] == "True"]
        (near,) = [w for w in workers if w["step"] == step and w["remote"] == "False"]
        assert int(far["requests"]) > 0 and int(near["requests"]) > 0, workers
        assert 0.0 < float(far["cpu_share_of_one_core"]) <= 1.5, workers
        assert float(far["cpu_over_seconds"]) >= 1.0, workers
    with (run / "steps.csv").open() as handle:
        steps = list(csv.DictReader(handle))
    assert all(row["truth_ok"] == "True" and row["events_missing"] == "0" for row in steps)
    with (run / "generator.csv").open() as handle:
        remote_rows = [
            row["step"] for row in csv.DictReader(handle) if row["process"].startswith("remote")
        ]
    assert sorted(remote_rows) == ["1", "2"], remote_rows  # in the generator check, each step

    report = (run / "report.md").read_text()
    assert "## Locust workers (as reported to the master)" in report
    assert "| remote |" in report
    assert "the gateway process (every thread) on CPU 0;" in report
    assert "Locust and this script on CPU 1" in report
