"""Watching the load generator's CPU: real processes, real /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from loadtests.generator import CpuWatcher, count_cpu_warnings
from loadtests.verdict import generator_saturation

#: a parent that forks one busy child and one idle child, then waits for both
_TREE = """
import subprocess, sys, time
busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
time.sleep(60)
"""


def test_a_busy_forked_process_is_seen_and_marks_the_generator_saturated() -> None:
    """The watcher finds the children of the process it watches (named in fork order); the
    one spinning in a loop uses a large share of a core and the verdict calls the generator
    saturated, while the idle parent and idle child stay near zero."""
    parent = subprocess.Popen([sys.executable, "-c", _TREE], start_new_session=True)
    try:
        watcher = CpuWatcher(parent.pid, interval=0.2).start()
        for _ in range(40):  # at most ~8 s: until both children are seen and the spinner shows
            time.sleep(0.2)
            shares = watcher.shares()
            if len(shares) == 3 and shares.get("worker 1", 0.0) > 0.5:
                break
        shares = watcher.stop()
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()
    assert set(shares) == {"master", "worker 1", "worker 2"}, shares
    # on a busy machine the spinner may get well under a core: compare it with the idle ones
    assert shares["worker 1"] > 0.15, shares
    assert shares["master"] < 0.1 and shares["worker 2"] < 0.1, shares
    reason = generator_saturation(shares, 0, threshold=0.15)
    assert reason is not None and "worker 1" in reason and "master" not in reason


def test_locusts_cpu_warnings_are_counted_in_its_log() -> None:
    """Both Locust messages count (its own process, and a worker reported by the master)."""
    log = (
        "[2026] WARNING/locust.runners: CPU usage above 90%! This may constrain ...\n"
        "[2026] INFO/locust.main: Starting\n"
        "[2026] WARNING/locust.runners: Worker a_b (index 1) exceeded cpu threshold (will ...)\n"
    )
    assert count_cpu_warnings(log) == 2
    assert count_cpu_warnings("all quiet\n") == 0


def test_start_up_seconds_can_be_left_out_of_the_average() -> None:
    """A process that burned a core while importing, then idled, is not called busy once its
    start-up is skipped; without the skip the import counts."""
    watcher = CpuWatcher(root=1)
    watcher._series = {1: [(0.0, 0.0), (2.0, 2.0), (3.0, 2.05), (4.0, 2.1), (6.0, 2.2)]}
    assert watcher.shares()["locust"] == 2.2 / 6.0
    assert round(watcher.shares(skip=2.0)["locust"], 6) == 0.05
    # too little left after the skip: the whole span is used
    assert watcher.shares(skip=5.5)["locust"] == 2.2 / 6.0
