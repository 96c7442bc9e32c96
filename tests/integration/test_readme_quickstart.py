"""The README's Quickstart, run as written: the fenced ``sh`` blocks under "## Quickstart",
in order, against a fresh ``make run`` with its own data directory and port.

Each block must match exactly one documented outcome below (and each outcome one block), so a
step added to, changed in or dropped from the README without its outcome here fails this test,
as does code that no longer does what the README says. The only rewrite is the port: the
README's ``localhost:8000`` becomes the test's own port, which ``HOOKLINE_PORT`` also gives the
gateway and the CLI (as the README tells users to do).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.devconfig import DevConfig
from handlers.registry import PROVIDERS
from tests.integration.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: the message ``hookline demo`` delivers, opens and clicks (Postmark, seed 42)
DEMO_MESSAGE = "0000002a-0000-4000-8000-00000000002a"


def quickstart_blocks(text: str) -> list[str]:
    """The ``sh`` code blocks of the Quickstart section (its subsections included)."""
    _, found, rest = text.partition("\n## Quickstart\n")
    assert found, "README.md has no '## Quickstart' section"
    section = rest.split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"^```sh\n(.*?)^```", section, re.M | re.S)]


@dataclass
class Outcome:
    """What one Quickstart step must show: ``matches`` picks the block, ``check`` its output."""

    name: str
    matches: Callable[[str], bool]
    check: Callable[[str], None]


def _demo(out: str) -> None:
    assert "every request acknowledged (HTTP 200)" in out, out
    assert re.search(rf"to {len(PROVIDERS)} sources: " + ", ".join(PROVIDERS), out), out
    assert f"hookline message {DEMO_MESSAGE}" in out
    for section in ("== stats per provider", "== suppression list"):
        assert section in out
    assert "hard_bounce" in out and "complaint" in out, "suppression list shows nothing"


def _lookup(out: str) -> None:
    timeline = [line.split() for line in out.splitlines() if DEMO_MESSAGE in line]
    kinds = [row[1] for row in timeline if len(row) > 2 and row[2] == "postmark"]
    assert kinds == ["delivered", "opened", "clicked"], out
    assert "OCCURRED_AT" in out and out.count("EVENT_TYPE") == 2, "events table missing"


def _metrics(out: str) -> None:
    seen: dict[str, float] = {}
    for match in re.finditer(
        r'^hookline_events_received_total\{event_type="\w+",provider="(\w+)",source="[^"]+"\} '
        r"([0-9.e+]+)$",
        out,
        re.M,
    ):
        seen[match[1]] = seen.get(match[1], 0.0) + float(match[2])
    assert {p for p, count in seen.items() if count > 0} == set(PROVIDERS), seen


def _listing(out: str) -> None:
    for name in ("deliverability.json", "delivery.json", "gateway-overview.json"):
        assert name in out
    assert "grafana/alerts/hookline.rules.yml" in out


def _accepted(out: str) -> None:
    assert json.loads(out.strip().splitlines()[-1]) == {"accepted": 1, "duplicates": 0}, out


OUTCOMES = [
    Outcome("make demo", lambda b: b == "make demo", _demo),
    Outcome("look up a message", lambda b: b.startswith(".venv/bin/hookline message"), _lookup),
    Outcome("metrics", lambda b: "/metrics" in b and "grep hookline_events" in b, _metrics),
    Outcome("dashboards and alerts", lambda b: b.startswith("ls grafana/"), _listing),
    Outcome("basic-auth curl", lambda b: "sign postmark --basic-auth" in b, _accepted),
    Outcome("signed curl", lambda b: "sign sendgrid" in b and b.endswith("| sh"), _accepted),
]


@pytest.fixture
def sandbox() -> Iterator[tuple[dict[str, str], Path, int]]:
    """The environment of a new user's terminals: nothing of ours, their own data dir and port."""
    base = Path(tempfile.mkdtemp(prefix="hookline-quickstart-"))
    os.chmod(base, 0o755)  # the embedded PostgreSQL may run as another user
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HOOKLINE_", "OTEL_"))
    }
    env.update({"HOOKLINE_PORT": str(port), "HOOKLINE_DATA_DIR": str(base / "data")})
    yield env, base, port


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, f"make run exited early:\n{log.read_text()[-3000:]}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"make run never became ready:\n{log.read_text()[-3000:]}")


def test_readme_quickstart_runs_as_written(sandbox: tuple[dict[str, str], Path, int]) -> None:
    """Pasted in order on a fresh data directory, the Quickstart's steps do what the README
    says: `make run` serves a development configuration with all ten providers, `make demo`
    sends signed events from all of them, and those events are visible in the CLI, in the
    admin API and in /metrics; the two hand-made curls are accepted."""
    env, base, port = sandbox
    blocks = quickstart_blocks(README.read_text())
    assert blocks and blocks[0] == "make run", "the Quickstart must start with `make run`"
    steps = blocks[1:]
    matched = [[o for o in OUTCOMES if o.matches(step)] for step in steps]
    for step, outcomes in zip(steps, matched, strict=True):
        assert len(outcomes) == 1, f"no single documented outcome for README step:\n{step}"
    assert sorted(o[0].name for o in matched) == sorted(o.name for o in OUTCOMES)

    log = base / "make-run.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            ["bash", "-c", blocks[0]],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(port, server, log)
        banner = log.read_text()
        assert "DEVELOPMENT configuration" in banner
        for provider in PROVIDERS:
            assert f"http://127.0.0.1:{port}/webhooks/{provider}/dev" in banner

        for step, (outcome,) in zip(steps, matched, strict=True):
            script = re.sub(r"(localhost|127\.0\.0\.1):8000\b", rf"\1:{port}", step)
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, f"{outcome.name}: exit {done.returncode}\n{done.stderr}"
            outcome.check(done.stdout)

        token = DevConfig.under(base / "data").admin_token()
        stats = httpx.get(
            f"http://127.0.0.1:{port}/v1/stats",
            params={"group_by": "provider", "since": "1h"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert stats.status_code == 200, stats.text
        assert {group["key"] for group in stats.json()["groups"]} == set(PROVIDERS)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)  # Ctrl-C, as a user stops `make run`
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
