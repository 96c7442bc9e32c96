"""A short, real capacity run: embedded PostgreSQL, a gateway, Locust with two worker processes.

The machinery is checked (a report, its CSVs, the truth check, the generator watched, the
database directory removed), never the figures: this machine is shared and its throughput
means nothing here. Two steps of 3 s and 2-3 users keep it short.
"""

from __future__ import annotations

import asyncio
import csv
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
