"""How busy the load generator is: CPU of the Locust processes, and Locust's own CPU warnings.

``CpuWatcher`` samples ``/proc/<pid>/stat`` of a Locust master and every process it forked
(``--processes``) once per interval, in a thread, and reports each process's average share of
one core over the time it was watched. Linux only (``/proc``); elsewhere it reports nothing
and the verdict falls back on Locust's warnings, which ``count_cpu_warnings`` finds in a log.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path

__all__ = ["CpuWatcher", "count_cpu_warnings"]

_PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: Locust's messages when one of its processes passed 90 % CPU (local runner, master on a worker)
_WARNING = re.compile(r"CPU usage above \d+%|exceeded cpu threshold")


def count_cpu_warnings(log_text: str) -> int:
    """How many times Locust warned that a process of its was CPU-bound."""
    return len(_WARNING.findall(log_text))


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of ``pid``, or None if it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    parent, utime, stime = int(fields[1]), int(fields[11]), int(fields[12])
    return parent, (utime + stime) / _TICKS


def _children_of(root: int) -> list[int]:
    """Every live descendant of ``root``."""
    parents: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                parents[int(entry.name)] = stat[0]
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = sorted(pid for pid, ppid in parents.items() if ppid == parent)
        found.extend(children)
        frontier.extend(children)
    return found


class CpuWatcher:
    """Samples the CPU of process ``root`` and its descendants until ``stop()``."""

    def __init__(self, root: int, interval: float = 1.0, name: str | None = None) -> None:
        self.root = root
        self.interval = interval
        #: what to call ``root`` (default: ``master`` when it forked workers, else ``locust``)
        self.name = name
        #: pid -> [(monotonic time, CPU seconds)] in sampling order
        self._series: dict[int, list[tuple[float, float]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-watcher", daemon=True)

    def start(self) -> CpuWatcher:
        self._thread.start()
        return self

    def stop(self, skip: float = 0.0) -> dict[str, float]:
        """Stop sampling; each process's average share of one core (``master``, ``worker N``
        in fork order; ``locust`` when it forked nothing), see ``shares``."""
        self._stop.set()
        self._thread.join(timeout=10)
        return self.shares(skip)

    @property
    def pids(self) -> set[int]:
        """Every process seen so far (``root`` and its descendants)."""
        return set(self._series)

    def sample(self) -> None:
        now = time.monotonic()
        for pid in [self.root, *_children_of(self.root)]:
            stat = _stat(pid)
            if stat is None:
                continue
            self._series.setdefault(pid, []).append((now, stat[1]))

    def shares(self, skip: float = 0.0) -> dict[str, float]:
        """Each process's average share of one core, leaving out its first ``skip`` seconds
        (Python's imports and Locust's start-up) when at least a second is left after them."""
        shares: dict[str, float] = {}
        workers = sorted(pid for pid in self._series if pid != self.root)
        for pid, series in self._series.items():
            start = next((p for p in series if p[0] >= series[0][0] + skip), series[0])
            if series[-1][0] - start[0] < 1.0:
                start = series[0]
            elapsed = series[-1][0] - start[0]
            if elapsed <= 0:
                continue
            if pid == self.root:
                name = self.name or ("master" if workers else "locust")
            else:
                name = f"worker {workers.index(pid) + 1}"
            shares[name] = (series[-1][1] - start[1]) / elapsed
        return shares

    def _run(self) -> None:
        if not _PROC.is_dir():
            return
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)
        self.sample()
