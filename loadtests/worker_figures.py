"""What each Locust worker told its master: who it is, how many requests it sent, its CPU.

A worker on another machine cannot be watched through this machine's ``/proc``, so the
capacity run takes its figures from Locust itself: every worker sends the master a heartbeat
each second carrying its CPU usage (Locust's ``cpu_usage``, percent of one core, refreshed by
the worker every 5 s; Locust warns above 90 %) and a statistics report every 3 s, to which the
Locust file adds the worker's host name and pid (``identify``). In the master, ``WorkerLog``
(hooked into Locust's events by ``loadtests/locustfile.py``) keeps per worker its identity, the
requests it reported and its CPU samples taken while the users ran, and writes them as JSON
when the master quits (``--loadtest-workers-file``); ``read_workers`` turns that file into one
``WorkerFigures`` per worker, for the verdict and the report.
"""

from __future__ import annotations

import json
import math
import os
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["IDENTITY_KEY", "WorkerFigures", "WorkerLog", "identify", "read_workers"]

#: the key the Locust file adds to each worker's report to the master
IDENTITY_KEY = "hookline_loadtest_worker"


def identify(data: MutableMapping[str, Any]) -> None:
    """Add this worker process's host name and pid to a report bound for the master."""
    data[IDENTITY_KEY] = {"host": socket.gethostname(), "pid": os.getpid()}


@dataclass(frozen=True)
class WorkerFigures:
    """One Locust worker over one step, as the master saw it."""

    #: Locust's worker index in this step (0-based, in the order the workers connected)
    index: int
    host: str
    pid: int
    #: requests the worker reported
    requests: int
    #: mean and highest ``cpu_usage`` it reported while the users ran, as a share of one core
    #: (NaN when it reported none)
    cpu_mean: float
    cpu_max: float
    cpu_samples: int
    #: on another machine (not one of the processes the capacity script started)
    remote: bool = False

    def is_among(self, host: str, pids: set[int]) -> bool:
        """True when this worker is one of the processes ``pids`` on ``host``."""
        return self.host == host and self.pid in pids


@dataclass
class _Worker:
    index: int = -1
    host: str = "?"
    pid: int = 0
    requests: int = 0
    cpu: list[float] = field(default_factory=list)


class WorkerLog:
    """The master's record of its workers during one Locust run (fed by Locust's events)."""

    def __init__(self) -> None:
        self._workers: dict[str, _Worker] = {}

    def report(self, client_id: str, index: int, data: Mapping[str, Any]) -> None:
        """A worker's statistics report (Locust's ``worker_report`` event)."""
        worker = self._workers.setdefault(client_id, _Worker())
        worker.index = index
        identity = data.get(IDENTITY_KEY)
        if isinstance(identity, Mapping):
            worker.host = str(identity.get("host", worker.host))
            worker.pid = int(identity.get("pid", worker.pid))
        total = data.get("stats_total")
        if isinstance(total, Mapping):
            # each report carries the requests since the worker's previous one
            worker.requests += int(total.get("num_requests", 0))

    def heartbeat(self, client_id: str, index: int, cpu_percent: float, running: bool) -> None:
        """A worker's heartbeat (Locust's ``heartbeat_sent`` event, after it stored the
        worker's ``cpu_usage``). CPU only counts while the users run, and from the worker's
        first measurement on: a Locust process reports 0 until its first 5 s are over."""
        worker = self._workers.setdefault(client_id, _Worker())
        worker.index = index
        if running and (worker.cpu or cpu_percent > 0):
            worker.cpu.append(float(cpu_percent) / 100.0)

    def to_json(self) -> str:
        return json.dumps(
            [
                {
                    "index": w.index,
                    "host": w.host,
                    "pid": w.pid,
                    "requests": w.requests,
                    "cpu": w.cpu,
                }
                for w in self._workers.values()
            ]
        )

    def write(self, path: Path) -> None:
        path.write_text(self.to_json())


def read_workers(path: Path) -> list[WorkerFigures]:
    """The workers in a file ``WorkerLog.write`` wrote, by index; none if there is no file
    (a standalone Locust process has no workers)."""
    try:
        entries = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    figures = []
    for entry in entries:
        cpu = [float(value) for value in entry["cpu"]]
        figures.append(
            WorkerFigures(
                index=int(entry["index"]),
                host=str(entry["host"]),
                pid=int(entry["pid"]),
                requests=int(entry["requests"]),
                cpu_mean=sum(cpu) / len(cpu) if cpu else math.nan,
                cpu_max=max(cpu) if cpu else math.nan,
                cpu_samples=len(cpu),
            )
        )
    return sorted(figures, key=lambda w: w.index)
