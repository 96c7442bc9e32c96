"""Reading capacity-test results: Locust's stats CSV, the gateway's counters, the table."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from loadtests.capacity import build_parser
from loadtests.stats import AGGREGATED, read_stats_csv

# the header and rows exactly as Locust 2.x writes <prefix>_stats.csv
STATS_CSV = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,\
Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,\
50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
POST,sendgrid,120,0,41,47.5,12.0,210.0,29.0,60.2,0.0,41,50,55,60,80,95,130,160,210,210,210
POST,sendgrid bad_signature,10,1,30,31.0,20.0,44.0,125.0,5.0,0.5,30,31,33,35,40,44,44,44,44,44,44
,Aggregated,130,1,40,46.2,12.0,210.0,36.4,65.2,0.5,40,49,54,59,78,93,128,158,210,210,210
"""

EMPTY_CSV = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,\
Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,\
50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
,Aggregated,0,0,0,0.0,0,0,0,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A
"""


def test_stats_csv_rows_by_name(tmp_path: Path) -> None:
    """Each request name becomes a row with counts, rate and the percentiles we report."""
    path = tmp_path / "run_stats.csv"
    path.write_text(STATS_CSV)
    rows = read_stats_csv(path)
    assert set(rows) == {"sendgrid", "sendgrid bad_signature", AGGREGATED}
    total = rows[AGGREGATED]
    assert (total.requests, total.failures) == (130, 1)
    assert (total.requests_per_second, total.p50_ms, total.p95_ms, total.p99_ms) == (
        65.2,
        40.0,
        93.0,
        158.0,
    )
    assert total.failure_ratio == pytest.approx(1 / 130)


def test_stats_csv_without_requests_has_no_percentiles(tmp_path: Path) -> None:
    """Locust writes N/A when nothing completed: that is NaN."""
    path = tmp_path / "empty_stats.csv"
    path.write_text(EMPTY_CSV)
    total = read_stats_csv(path)[AGGREGATED]
    assert total.requests == 0 and math.isnan(total.p99_ms)


def test_a_file_without_the_aggregated_row_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("Type,Name,Request Count,Failure Count\nPOST,x,1,0\n")
    with pytest.raises(ValueError, match="not a Locust stats CSV"):
        read_stats_csv(path)


def test_capacity_arguments_are_bounded_and_checked() -> None:
    """The capacity script refuses unbounded runs (step count, users, seconds) and values
    the load generator would reject, before it starts anything."""
    parser = build_parser()
    args = parser.parse_args(["--steps", "5,20", "--step-seconds", "10", "--providers", "sendgrid"])
    assert (args.steps, args.step_seconds, args.providers) == ([5, 20], 10, ["sendgrid"])
    assert parser.parse_args([]).steps is None  # no fixed steps: the capacity search
    bad_arguments = [
        ["--steps", "0"],
        ["--steps", "5000"],
        ["--steps", ",".join(["1"] * 9)],
        ["--step-seconds", "3600"],
        ["--providers", "nosuchesp"],
        ["--batch-size", "0"],
        ["--duplicate-ratio", "2"],
        ["--processes", "-1"],
        ["--growth", "1"],
        ["--max-steps", "9"],
        ["--event-weights", "delivery=1"],
    ]
    for bad in bad_arguments:
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
