"""CPU affinity for the capacity run: parsing CPU lists, and pinning real child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from loadtests.affinity import cpus_of, format_cpus, parse_cpus, pinned


def test_cpu_lists_read_and_print_as_taskset_writes_them() -> None:
    """Numbers, ranges and lists parse to CPU sets and print back compactly; malformed or
    empty lists are refused."""
    assert parse_cpus("0") == {0}
    assert parse_cpus("0-2, 5") == {0, 1, 2, 5}
    assert format_cpus(parse_cpus("5,0-2")) == "0-2,5"
    assert format_cpus(frozenset()) == "none"
    for bad in ("", "a", "2-1", "-1", "1-x"):
        with pytest.raises(ValueError):
            parse_cpus(bad)


def test_a_process_started_while_pinned_runs_on_those_cpus_and_the_caller_is_restored() -> None:
    """A child started inside ``pinned({cpu})`` may only use that CPU, every thread of it
    (read back from /proc); the calling thread gets its own CPUs back afterwards."""
    mine = os.sched_getaffinity(0)
    cpu = min(mine)
    code = "import threading, time; threading.Thread(target=time.sleep, args=(30,)).start()"
    with pinned(frozenset({cpu})):
        child = subprocess.Popen([sys.executable, "-c", code])
    try:
        assert os.sched_getaffinity(0) == mine
        for _ in range(100):  # until its second thread exists
            if len(os.listdir(f"/proc/{child.pid}/task")) >= 2:
                break
            time.sleep(0.05)
        assert len(os.listdir(f"/proc/{child.pid}/task")) >= 2
        assert cpus_of(child.pid) == {cpu}
    finally:
        child.kill()
        child.wait()
    assert cpus_of(child.pid) == frozenset()  # gone
