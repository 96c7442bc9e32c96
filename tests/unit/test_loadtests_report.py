"""The capacity report: knee marked, invalid steps called out, HPA values, CSVs beside it."""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

from loadtests.gateway_figures import GatewayFigures
from loadtests.report import RunInfo, StepRecord, hpa_for, render_markdown, write_report
from loadtests.stats import RequestStats
from loadtests.truth import ProviderTruth, StepTruth
from loadtests.verdict import Objective, StepMeasure
from loadtests.worker_figures import WorkerFigures

OBJ = Objective(p99_ms=250.0, max_error_ratio=0.001)
INFO = RunInfo(
    started="2026-12-07 05:00 UTC",
    machine="test (2 CPUs)",
    profile="default.toml",
    traffic="sendgrid:1",
    objective=OBJ,
    processes=2,
    step_seconds=10,
    postgres="durable (fsync)",
)


def record(
    index: int, users: int, rps: float, p99: float, gen: str | None = None, stored: int = 100
) -> StepRecord:
    total = RequestStats("Aggregated", int(rps * 10), 0, rps, p99 / 2, p99 / 3, p99 / 2, p99)
    return StepRecord(
        index=index,
        users=users,
        seconds=10.0,
        total=total,
        measure=StepMeasure(users, rps, p99, 0.0, gen),
        generator_cpu={"master": 0.1, "worker 1": 0.4},
        locust_warnings=0,
        gateway=GatewayFigures(0.5, 4.0, 50.0, 2.0, 0.0, 1.0, "closed", False),
        truth=StepTruth((ProviderTruth("sendgrid", 1, fresh_acknowledged=100, stored=stored),)),
    )


def test_the_report_marks_the_knee_and_calls_out_a_saturated_generator(tmp_path: Path) -> None:
    """The passing step with the highest valid throughput is the knee; the faster step whose
    generator saturated is marked invalid and the verdict says the knee is a lower bound;
    steps.csv agrees (one knee)."""
    records = [
        record(1, 10, 500.0, 40.0),
        record(2, 20, 800.0, 90.0),
        record(3, 40, 1200.0, 120.0, gen="CPU at or above 85% of a core: worker 1 97%"),
    ]
    text = render_markdown(INFO, records)
    assert "**Knee: 800 requests/s (10 events/s) at 20 users**" in text
    assert "| 2 **knee** | 20 | yes |" in text
    assert "| 3 | 40 | **no: generator saturated** |" in text
    assert "the load generator saturated at step 3" in text
    assert "Only a lower bound" in text
    assert "(conservative: the knee is only a lower bound)" in text
    assert "used 85% or more of a core" in text  # the threshold the run used
    assert "every acknowledged event was found in PostgreSQL" in text

    write_report(tmp_path, INFO, records)
    with (tmp_path / "steps.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["knee"] for row in rows] == ["False", "True", "False"]
    assert (tmp_path / "providers.csv").exists() and (tmp_path / "generator.csv").exists()


def test_a_loss_is_reported_as_a_failed_truth_check() -> None:
    """A step with acknowledged events missing from PostgreSQL is shown as FAILED, with
    the provider and the count."""
    text = render_markdown(INFO, [record(1, 10, 500.0, 40.0, stored=99)])
    assert "**FAILED: acknowledged events are missing" in text
    assert "step 1: sendgrid: 1 acknowledged events missing from PostgreSQL" in text


def test_hpa_values_scale_out_at_the_headroom_of_the_knee() -> None:
    """800 req/s at 0.5 cores: at 60 % headroom and a 1-CPU request, 480 req/s per pod and
    30 % CPU; unknown CPU gives no CPU target."""
    hpa = hpa_for(record(2, 20, 800.0, 90.0), replica_cpu=1.0, headroom=0.6)
    assert (hpa.target_average_requests, hpa.target_cpu_percent) == (480, 30)
    unknown = replace(
        record(2, 20, 800.0, 90.0),
        gateway=GatewayFigures(math.nan, 0, 0, 0, 0, 0, "closed", False),
    )
    assert hpa_for(unknown, 1.0, 0.6).target_cpu_percent is None


def test_a_pinned_gateway_with_cpu_to_spare_at_the_knee_is_only_a_lower_bound() -> None:
    """With the gateway pinned to one core, a knee where it used 0.5 cores says the limit
    was elsewhere (only a lower bound for one replica); at 0.9 cores it was the gateway's;
    unpinned runs are not judged this way."""
    records = [record(1, 10, 500.0, 40.0), record(2, 20, 800.0, 300.0)]
    pinned = replace(INFO, gateway_cpus=1)
    text = render_markdown(pinned, records)
    assert "Only a lower bound: the gateway used 0.50 of its 1 pinned core(s)" in text
    busy = [replace(r, gateway=replace(r.gateway, cpu_cores=0.9)) for r in records]
    assert "Only a lower bound" not in render_markdown(pinned, busy)
    assert "Only a lower bound" not in render_markdown(INFO, records)


def test_the_workers_table_tells_remote_workers_from_this_machines(tmp_path: Path) -> None:
    """Each worker of each step is listed with host, requests and CPU share, remote or not;
    workers.csv holds the same rows; a run without workers has no such table."""
    workers = (
        WorkerFigures(0, "here", 11, 300, 0.42, 20.0, locust_cpu_peak=0.5),
        WorkerFigures(1, "loadbox-2", 22, 700, math.nan, 0.5, remote=True),
    )
    records = [replace(record(1, 10, 500.0, 40.0), workers=workers)]
    text = render_markdown(INFO, records)
    assert "| 1 | 1 | here | 11 | this machine | 300 | 42% | 20 | 50% |" in text
    assert "| 1 | 2 | loadbox-2 | 22 | remote | 700 | - | 0 | - |" in text
    write_report(tmp_path, INFO, records)
    with (tmp_path / "workers.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["host"], row["remote"], row["requests"]) for row in rows] == [
        ("here", "False", "300"),
        ("loadbox-2", "True", "700"),
    ]
    assert "Locust workers" not in render_markdown(INFO, [record(1, 10, 500.0, 40.0)])
