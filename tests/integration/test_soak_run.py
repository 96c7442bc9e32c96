"""A short, real soak (loadtests.soak): embedded PostgreSQL, a gateway, Locust, /metrics
scraped. The machinery and the exit code are checked, never the figures."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def test_a_soak_over_its_rss_bound_exits_2_and_says_why() -> None:
    """With an RSS bound no process can meet (-100%: RSS must vanish) a short soak still
    runs end to end, passes its truth check, reports RSS and the deepest queues, and exits
    2 naming the RSS bound: the bounds decide the exit code, not the run's speed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtests.soak",
        "--seconds", "8", "--warmup", "2", "--interval", "1",
        "--users", "2", "--processes", "1", "--max-rss-growth", "-1",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    text = output.decode(errors="replace")
    assert process.returncode == 2, text[-4000:]
    assert "RSS after the 2 s warm-up:" in text
    assert "deepest: batcher queue" in text
    assert "stored: OK" in text, text[-4000:]
    assert "OUT OF BOUNDS: RSS grew" in text
    assert "OUT OF BOUNDS: spool" not in text
