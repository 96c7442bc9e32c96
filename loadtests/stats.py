"""Reading a load step's results: Locust's ``<prefix>_stats.csv``.

Locust rewrites its CSV once a second, so the file is a consistent snapshot at most a second
older than the run's end: its rates and percentiles are right, its counts may miss the last
second (the capacity script takes exact counts from Locust's ``--json-file``).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["AGGREGATED", "RequestStats", "read_stats_csv"]

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
