"""What each Locust worker told its master: who it is, how many requests it sent, its CPU.

A worker on another machine cannot be watched through this machine's ``/proc``, so the
capacity run has every worker measure itself and say so over Locust's own channel: each
worker sends its master a statistics report every 3 s, to which the Locust file adds
(``WorkerClock.identify``) the worker's host name, pid, and the CPU seconds it used since its
users started (``time.process_time``, every thread of the process) over the seconds since
then. In the master, ``WorkerLog`` (hooked into Locust's events by ``loadtests/locustfile.py``)
keeps per worker its identity, the requests it reported and its latest CPU figure, and writes
them as JSON when the master quits (``--loadtest-workers-file``); ``read_workers`` turns that
file into one ``WorkerFigures`` per worker, for the verdict and the report.

Locust's own ``cpu_usage`` figure, which workers send in their heartbeats, is sampled only
every 10 s and reads 0 the first time, so a worker that joins a step reports nothing useful
for its first 20 s: too coarse to judge one step by. The master keeps its peak beside the
worker's own figure (``locust_cpu_peak``), and Locust's warning when a worker passes 90 %
(in the master's log) is counted by ``loadtests.generator``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["IDENTITY_KEY", "WorkerClock", "WorkerFigures", "WorkerLog", "read_workers"]

#: the key the Locust file adds to each worker's report to the master
IDENTITY_KEY = "hookline_loadtest_worker"
#: a CPU share over less than this many seconds says nothing
MIN_SECONDS = 1.0


class WorkerClock:
    """This worker process's CPU use since its users started (``start`` at Locust's
    ``test_start``)."""

    def __init__(self) -> None:
        self._start: tuple[float, float] | None = None

    def start(self) -> None:
        self._start = (time.monotonic(), time.process_time())

    def identify(self, data: MutableMapping[str, Any]) -> None:
        """Add host name, pid and (once started) CPU and wall seconds since the start to a
        report bound for the master."""
        identity: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
        if self._start is not None:
            identity["seconds"] = time.monotonic() - self._start[0]
            identity["cpu_seconds"] = time.process_time() - self._start[1]
        data[IDENTITY_KEY] = identity


@dataclass(frozen=True)
class WorkerFigures:
    """One Locust worker over one step, as the master saw it."""

    #: Locust's worker index in this step (0-based, in the order the workers connected)
    index: int
    host: str
    pid: int
    #: requests the worker reported
    requests: int
    #: its average share of one core since its users started (NaN when it never said)
    cpu_share: float
    #: the seconds that share is taken over (up to its last report the master received)
    cpu_over_seconds: float
    #: the highest ``cpu_usage`` Locust itself reported for it, as a share of one core
    #: (NaN when Locust had no figure yet: it measures every 10 s and reads 0 at first)
    locust_cpu_peak: float = math.nan
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
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    locust_cpu_peak: float = 0.0


class WorkerLog:
    """The master's record of its workers during one Locust run (fed by Locust's events)."""

    def __init__(self) -> None:
        self._workers: dict[str, _Worker] = {}

    def report(self, client_id: str, index: int, data: Mapping[str, Any]) -> None:
        """A worker's statistics report (Locust's ``worker_report`` event)."""
        worker = self._workers.setdefault(client_id, _Worker())
        worker.index = index
        total = data.get("stats_total")
        if isinstance(total, Mapping):
            # each report carries the requests since the worker's previous one
            worker.requests += int(total.get("num_requests", 0))
        identity = data.get(IDENTITY_KEY)
        if not isinstance(identity, Mapping):
            return
        worker.host = str(identity.get("host", worker.host))
        worker.pid = int(identity.get("pid", worker.pid))
        seconds = float(identity.get("seconds", 0.0))
        if seconds > worker.seconds:  # the latest figure covers the longest time
            worker.seconds = seconds
            worker.cpu_seconds = float(identity.get("cpu_seconds", 0.0))

    def heartbeat(self, client_id: str, index: int, cpu_percent: float) -> None:
        """A worker's heartbeat (Locust's ``heartbeat_sent`` event, once the master stored
        the worker's ``cpu_usage``, in percent of one core)."""
        worker = self._workers.setdefault(client_id, _Worker())
        worker.index = index
        worker.locust_cpu_peak = max(worker.locust_cpu_peak, float(cpu_percent) / 100.0)

    def to_json(self) -> str:
        return json.dumps(
            [
                {
                    "index": w.index,
                    "host": w.host,
                    "pid": w.pid,
                    "requests": w.requests,
                    "seconds": w.seconds,
                    "cpu_seconds": w.cpu_seconds,
                    "locust_cpu_peak": w.locust_cpu_peak,
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
        seconds = float(entry["seconds"])
        figures.append(
            WorkerFigures(
                index=int(entry["index"]),
                host=str(entry["host"]),
                pid=int(entry["pid"]),
                requests=int(entry["requests"]),
                cpu_share=float(entry["cpu_seconds"]) / seconds
                if seconds >= MIN_SECONDS
                else math.nan,
                cpu_over_seconds=seconds,
                locust_cpu_peak=float(entry["locust_cpu_peak"]) or math.nan,
            )
        )
    return sorted(figures, key=lambda w: w.index)
