"""`make run` on its zero-config default: embedded PostgreSQL, ready, Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from tests.integration.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _wait_ready(
    port: int, process: subprocess.Popen[bytes], timeout: float = 180
) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "make run exited early"
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if response.status_code == 200:
                body: dict[str, str] = response.json()
                return body
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError("gateway never became ready")


def _run_once(data_dir: Path, port: int) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("HOOKLINE_") and not key.startswith("OTEL_")
    }
    env.update({"HOOKLINE_PORT": str(port), "HOOKLINE_DATA_DIR": str(data_dir)})
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        body = _wait_ready(port, process)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return body


def test_make_run_zero_config_comes_up_ready_and_stops_cleanly() -> None:
    """No config, no database URL: `make run` starts an embedded PostgreSQL under the data
    directory, answers /readyz, stops everything on Ctrl-C, and the data survives a restart."""
    base = Path(tempfile.mkdtemp(prefix="hookline-make-run-"))
    os.chmod(base, 0o755)
    data_dir = base / "data"
    body = _run_once(data_dir, free_port())
    assert body["status"] == "ready" and body["database"] == "ok"
    assert (data_dir / "postgres" / "PG_VERSION").exists()
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "PostgreSQL left running"
    marker = (data_dir / "postgres" / "global" / "pg_control").stat().st_ino
    body = _run_once(data_dir, free_port())
    assert body["database"] == "ok"
    assert (data_dir / "postgres" / "global" / "pg_control").stat().st_ino == marker
    assert not (data_dir / "postgres" / "postmaster.pid").exists()
