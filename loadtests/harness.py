"""The processes a capacity run starts and watches: the gateway, its /metrics, its database.

``gateway_process`` runs ``hookline serve`` (stopped on exit); ``wait_ready`` and
``wait_drained`` wait for it to answer and to have flushed its queue and spool;
``GatewaySampler`` scrapes ``/metrics`` once a second in a thread; ``stored_by_provider``
counts the rows in ``events``. The gateway listens where its config says (127.0.0.1
unless the capacity script is given ``--gateway-host``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from loadtests.affinity import pinned
from loadtests.gateway_figures import Sample, parse_sample

__all__ = [
    "HOST",
    "GatewaySampler",
    "environment_without",
    "free_port",
    "gateway_process",
    "http_get",
    "log_tail",
    "scrape",
    "stored_by_provider",
    "wait_drained",
    "wait_ready",
]

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
#: how long the gateway may take to flush its queue and spool after a step
DRAIN_SECONDS = 120.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def gateway_process(
    config: Path, log: Path, cpus: frozenset[int] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``hookline serve`` with ``config``, on ``cpus`` if given (``loadtests.affinity``);
    stopped (SIGTERM, then SIGKILL) on exit."""
    env = {**environment_without("HOOKLINE_"), "HOOKLINE_CONFIG": str(config)}
    with log.open("wb") as output, pinned(cpus):
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def environment_without(prefix: str) -> dict[str, str]:
    """This process's environment minus ``prefix*`` variables, so the caller's settings
    (e.g. ``HOOKLINE_DATABASE_URL``) cannot redirect the processes started here."""
    return {key: value for key, value in os.environ.items() if not key.startswith(prefix)}


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the gateway exited ({process.returncode}):\n{log_tail(log)}")
        try:
            if http_get(url + "/readyz", timeout=2.0)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the gateway was not ready after {timeout:.0f} s:\n{log_tail(log)}")


def scrape(url: str) -> Sample | None:
    try:
        status, text = http_get(url + "/metrics")
    except OSError:
        return None
    return parse_sample(text) if status == 200 else None


class GatewaySampler:
    """Scrapes the gateway's /metrics once a second in a thread, during one step."""

    def __init__(self, url: str, interval: float = 1.0) -> None:
        self.url = url
        self.interval = interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-sampler", daemon=True)

    def _take(self) -> None:
        sample = scrape(self.url)
        if sample is not None:
            self.samples.append(sample)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._take()

    def __enter__(self) -> GatewaySampler:
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._take()


def wait_drained(url: str, timeout: float = DRAIN_SECONDS) -> None:
    """Until nothing waits in the gateway's in-process queue or spool: every acknowledged
    event has then reached PostgreSQL (or never will, which the truth check reports)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sample = scrape(url)
        if sample is not None and sample.queue_events == 0 and sample.spool_events == 0:
            return
        time.sleep(0.25)


async def _stored_rows(database_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch("SELECT provider, count(*) AS n FROM events GROUP BY provider")
    finally:
        await conn.close()
    return {str(row["provider"]): int(row["n"]) for row in rows}


def stored_by_provider(database_url: str) -> dict[str, int]:
    """Rows in ``events`` per provider."""
    return asyncio.run(_stored_rows(database_url))
