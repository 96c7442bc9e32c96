"""CPU affinity for a capacity run: the gateway on its own cores, everything else on others.

``--gateway-cpus 0 --generator-cpus 1`` measures one gateway process on one core (the chart's
CPU request) while Locust, PostgreSQL and the capacity script itself share the other core,
as on a deployment where they run elsewhere. Linux only (``os.sched_setaffinity``).

Affinity on Linux belongs to a thread and is inherited by every thread and process it
starts: ``pin_this_thread`` moves the capacity script's main thread (and so everything it
starts later) to the generator's cores, and ``pinned`` moves it to the gateway's cores just
while the gateway process is started. ``cpus_of`` reads back what a running process (all of
its threads) may use, so the report shows what was, not what was asked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["cpus_of", "format_cpus", "parse_cpus", "pin_this_thread", "pinned"]

_PROC = Path("/proc")


def parse_cpus(text: str) -> frozenset[int]:
    """``"0"``, ``"0,2"``, ``"0-3"`` (as taskset -c) -> the CPU numbers; ValueError if malformed
    or empty."""
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            first, last = int(low), int(high) if sep else int(low)
        except ValueError:
            raise ValueError(f"{part!r} is not a CPU number or range (e.g. 0, 1-3)") from None
        if first < 0 or last < first:
            raise ValueError(f"{part!r} is not a CPU number or range (e.g. 0, 1-3)")
        cpus.update(range(first, last + 1))
    if not cpus:
        raise ValueError("no CPUs given")
    return frozenset(cpus)


def format_cpus(cpus: frozenset[int] | set[int]) -> str:
    """``{0, 1, 2, 5}`` -> ``"0-2,5"`` (``"none"`` when empty)."""
    ranges: list[list[int]] = []
    for cpu in sorted(cpus):
        if ranges and cpu == ranges[-1][1] + 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges) or "none"


def pin_this_thread(cpus: frozenset[int]) -> None:
    """Run the calling thread, and whatever it starts from now on, on ``cpus``."""
    os.sched_setaffinity(0, cpus)


@contextmanager
def pinned(cpus: frozenset[int] | None) -> Iterator[None]:
    """Within the block, the calling thread (and what it starts) runs on ``cpus``; its own
    affinity is restored afterwards. ``None`` changes nothing."""
    if cpus is None:
        yield
        return
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def cpus_of(pid: int) -> frozenset[int]:
    """The CPUs any thread of process ``pid`` may run on (empty if it is gone)."""
    cpus: set[int] = set()
    try:
        tasks = list((_PROC / str(pid) / "task").iterdir())
    except OSError:
        return frozenset()
    for task in tasks:
        try:
            cpus.update(os.sched_getaffinity(int(task.name)))
        except OSError:
            continue  # the thread ended meanwhile
    return frozenset(cpus)
