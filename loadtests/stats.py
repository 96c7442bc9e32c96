"""Reading a load step's results: Locust's ``<prefix>_stats.csv`` and the gateway's counters.

Locust rewrites its CSV once a second, so the file is a consistent snapshot at most a second
older than the run's end: its rates and percentiles are right, its counts may miss the last
second. The gateway's ``/metrics`` counters are exact.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

__all__ = [
    "AGGREGATED",
    "RequestStats",
    "StepResult",
    "counter_total",
    "format_table",
    "read_stats_csv",
]

#: Locust's name for the row summing every request name
AGGREGATED = "Aggregated"
_COLUMNS = frozenset(
    {
        "Name",
        "Request Count",
        "Failure Count",
        "Requests/s",
        "Average Response Time",
        "50%",
        "95%",
        "99%",
    }
)


@dataclass(frozen=True)
class RequestStats:
    """One row of Locust's stats CSV (times in milliseconds; NaN when Locust has none)."""

    name: str
    requests: int
    failures: int
    requests_per_second: float
    average_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def _number(text: str) -> float:
    if text.strip() in ("", "N/A"):
        return math.nan
    return float(text)


def read_stats_csv(path: str | os.PathLike[str]) -> dict[str, RequestStats]:
    """Rows of ``<prefix>_stats.csv`` by request name (``AGGREGATED`` for the total)."""
    rows: dict[str, RequestStats] = {}
    with Path(path).open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = _COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: no {', '.join(sorted(missing))}: not a Locust stats CSV")
        for row in reader:
            name = row["Name"]
            rows[name] = RequestStats(
                name=name,
                requests=int(row["Request Count"]),
                failures=int(row["Failure Count"]),
                requests_per_second=_number(row["Requests/s"]),
                average_ms=_number(row["Average Response Time"]),
                p50_ms=_number(row["50%"]),
                p95_ms=_number(row["95%"]),
                p99_ms=_number(row["99%"]),
            )
    if AGGREGATED not in rows:
        raise ValueError(f"{path}: no {AGGREGATED!r} row: not a Locust stats CSV")
    return rows


def counter_total(exposition: str, name: str, labels: Mapping[str, str] | None = None) -> float:
    """Sum of the samples called ``name`` (e.g. ``hookline_events_received_total``) whose
    labels include ``labels``, in a Prometheus text exposition."""
    wanted = dict(labels or {})
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and wanted.items() <= sample.labels.items():
                total += sample.value
    return total


@dataclass(frozen=True)
class StepResult:
    """One capacity step: ``users`` for ``seconds`` and Locust's totals, plus what the
    gateway counted during the step (None when its metrics were unreadable): new events
    stored and webhook requests answered.

    ``events_per_second`` is Locust's request rate times the gateway's events per request,
    so both rates share Locust's measurement window.
    """

    users: int
    seconds: float
    total: RequestStats
    events_stored: float | None = None
    gateway_requests: float | None = None

    @property
    def events_per_second(self) -> float | None:
        if self.events_stored is None or not self.gateway_requests:
            return None
        return self.total.requests_per_second * self.events_stored / self.gateway_requests


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def format_table(results: Sequence[StepResult]) -> str:
    """A fixed-width table: users, req/s, events/s, p50/p95/p99 (ms), failures."""
    header = ("users", "req/s", "events/s", "p50 ms", "p95 ms", "p99 ms", "failures")
    lines: list[Iterable[str]] = [header]
    for result in results:
        total = result.total
        events = result.events_per_second
        lines.append(
            (
                str(result.users),
                f"{total.requests_per_second:.1f}",
                "-" if events is None else f"{events:.1f}",
                _ms(total.p50_ms),
                _ms(total.p95_ms),
                _ms(total.p99_ms),
                f"{total.failures} ({total.failure_ratio:.2%})",
            )
        )
    cells = [list(line) for line in lines]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in cells
    )
