"""Podman for the container tests: the image ``make image`` builds (built once per session,
cached by podman's layer cache) and containers run through scripts/podman.sh, which handles
the machine's quirks (cgroup mount, containers.conf, host networking only)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.container.kube_to_podman import HttpProbe, PodmanRun

__all__ = ["BuiltImage", "build_image", "podman", "running", "wait_for_probe"]

ROOT = Path(__file__).resolve().parents[2]
PODMAN_SH = ROOT / "scripts" / "podman.sh"
BUILD_SH = ROOT / "scripts" / "build-image.sh"


@dataclass(frozen=True)
class BuiltImage:
    name: str
    build_seconds: float
    size_bytes: int


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS`` (through scripts/podman.sh) and capture its output."""
    result = subprocess.run(
        ["bash", str(PODMAN_SH), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} failed:\n{result.stderr}")
    return result


def build_image() -> BuiltImage:
    """``make image`` (scripts/build-image.sh): the image name it printed, how long it took
    and the image's size."""
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(BUILD_SH)],
        capture_output=True,
        text=True,
        timeout=1500,
        env={**os.environ, "HOOKLINE_IMAGE_QUIET": "1"},
        stdin=subprocess.DEVNULL,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(f"make image failed:\n{result.stderr[-4000:]}")
    name = result.stdout.strip().splitlines()[-1]
    size = int(podman("image", "inspect", name, "--format", "{{.Size}}").stdout.strip())
    return BuiltImage(name, elapsed, size)


@contextlib.contextmanager
def running(run: PodmanRun) -> Iterator[str]:
    """Start ``run`` (its volume files written first) and yield the container's name;
    remove the container afterwards, whatever happened."""
    name = run.argv[run.argv.index("--name") + 1]
    run.materialize()
    podman(*run.argv)
    try:
        yield name
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def logs(name: str) -> str:
    """The container's stdout and stderr so far (for failure messages)."""
    result = podman("logs", name, check=False)
    return (result.stdout + result.stderr)[-6000:]


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for_probe(name: str, probe: HttpProbe, budget_seconds: float) -> httpx.Response:
    """Poll ``probe`` until it answers 2xx or 3xx (what the kubelet counts as success);
    fail once ``budget_seconds`` (for a startup probe: period x failureThreshold, the time
    the kubelet would allow) have passed, or as soon as the container exits."""
    url = f"http://127.0.0.1:{probe.port}{probe.path}"
    last = "no answer"
    deadline = time.monotonic() + budget_seconds
    while time.monotonic() < deadline:
        state = podman("inspect", name, "--format", "{{.State.Status}}").stdout.strip()
        if state not in ("running", "created"):
            raise AssertionError(f"container {state} before {probe.path} answered:\n{logs(name)}")
        try:
            response = httpx.get(url, timeout=probe.timeout_seconds)
            if 200 <= response.status_code < 400:
                return response
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.2)
    raise AssertionError(f"{probe.path} never answered 2xx ({last}):\n{logs(name)}")
